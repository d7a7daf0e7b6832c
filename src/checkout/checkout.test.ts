import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCustomer } from '../cart/cart-test-fixtures.ts';
import type { Order } from '../orders/index.ts';
import { withSystem } from '../platform/db/index.ts';
import {
  type CheckoutTestApp,
  confirmPending,
  createStore,
  orderOf,
  placeOrder,
  product,
  readyCart,
  send,
  settled,
  startCheckoutApp,
  stockOf,
} from './checkout-test-fixtures.ts';
import { confirmStep } from './step-confirm.ts';

let t: CheckoutTestApp;
let shop: Awaited<ReturnType<typeof createStore>>;

beforeAll(async () => {
  // A short step deadline, so the hanging provider times out quickly.
  t = await startCheckoutApp({ MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '800' });
  shop = await createStore(t, 'checkout-shop');
});
afterAll(() => t.close());

const ledger = () => t.payments.testProvider.ledger(shop.id);
const chargesOf = async (orderId: string) =>
  (await ledger()).charges.filter((c) => c.idempotencyKey.includes(orderId));
const sagaOf = async (orderId: string) => {
  const response = await send(t.app, 'GET', `/api/v1/orders/${orderId}/saga`, shop.staff);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{
    status: string;
    steps: { step: string; action: string; status: string; attempt: number }[];
  }>();
};

describe('checkout', () => {
  it('completes a paid order: stock committed, payment captured once, cart emptied, every step logged', async () => {
    const shirt = await product(t, shop, 5);
    const mug = await product(t, shop, 5);
    const customer = await newCustomer(t, shop);
    await readyCart(
      t,
      shop,
      [
        { variant: shirt, quantity: 2 },
        { variant: mug, quantity: 1 },
      ],
      customer,
    );
    const placed = await placeOrder(t, customer, 'tok_visa', 'first-order', { email: 'erika@example.com' });
    expect(placed.statusCode, placed.body).toBe(201);
    const order = placed.json<Order>();
    // The answer is the order as the saga wrote it (not read back): the same as reading it.
    const read = await send(t.app, 'GET', `/api/v1/orders/${order.id}`, customer);
    expect(read.json<Order>()).toEqual(order);
    // 3 × 10.00 + 19% VAT (5.70) + shipping 4.90
    expect(order).toMatchObject({
      status: 'completed',
      paymentStatus: 'captured',
      currency: 'EUR',
      email: 'erika@example.com',
      totals: { subtotal: 3000, tax: 570, shipping: 490, total: 4060 },
    });
    expect(order.lines).toHaveLength(2);
    expect(order.number).toBeGreaterThanOrEqual(1001);
    expect(await stockOf(t, shop, shirt)).toMatchObject({ onHand: 3, reserved: 0 });
    expect(await stockOf(t, shop, mug)).toMatchObject({ onHand: 4, reserved: 0 });
    const charges = await chargesOf(order.id);
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ amount: 4060, capturedAmount: 4060, refundedAmount: 0 });
    // The cart is gone with the order: the next GET starts an empty one.
    const cart = await send(t.app, 'GET', '/api/v1/cart', customer);
    expect(cart.statusCode === 404 || cart.json<{ lines: unknown[] }>().lines.length === 0, cart.body).toBe(
      true,
    );
    const saga = await sagaOf(order.id);
    expect(saga.status).toBe('completed');
    expect(saga.steps.map((s) => `${s.step}:${s.action}:${s.status}`)).toEqual([
      'validate:invoke:succeeded',
      'reserve:invoke:succeeded',
      'authorize:invoke:succeeded',
      'confirm:invoke:succeeded',
    ]);
    expect(order.history.map((h) => h.to)).toEqual([
      'created',
      'inventory_reserved',
      'payment_processing',
      'completed',
    ]);
  });

  it("stores the events a checkout's subscribers need nothing from as delivered at once: its own authorization, its completion (no sale's), its commit", async () => {
    const lamp = await product(t, shop, 5);
    const customer = await newCustomer(t, shop);
    await readyCart(t, shop, [{ variant: lamp, quantity: 1 }], customer);
    const placed = await placeOrder(t, customer);
    expect(placed.statusCode, placed.body).toBe(201);
    const order = placed.json<Order>();
    const item = await stockOf(t, shop, lamp);
    expect(item).toMatchObject({ onHand: 4, reserved: 0 });
    const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
      sql<{ type: string; state: string; attempts: number }>`
        select m.headers->>'ce-type' as type, m.state,
          (select count(*)::int from wal.attempts a where a.message_pk = m.id) as attempts
        from wal.messages m
        where m.tenant_id = ${shop.id} and (m.ordering_key = ${order.id} or m.payload->>'orderId' = ${order.id}
          or (m.ordering_key = ${item.id} and m.payload->>'onHand' = '4'))`.execute(trx),
    );
    const byType = new Map(rows.map((r) => [r.type, r]));
    // The saga settled its authorization itself; the order took no sale's units; the commit left
    // the lamp's available count as it was: the saga's payments, the flash sales and the catalog pass.
    for (const type of [
      'mercato.payment.authorized',
      'mercato.order.completed',
      'mercato.inventory.stock-changed',
    ])
      expect(byType.get(type), type).toMatchObject({ state: 'delivered', attempts: 0 });
    expect(byType.get('mercato.order.created'), 'the query finds the order').toBeDefined();
  });

  it('writes the outcome settle came to when it was not the one foreseen: the transaction runs again the usual way', async () => {
    const item = await product(t, shop, 3);
    const customer = await newCustomer(t, shop);
    await readyCart(t, shop, [{ variant: item, quantity: 1 }], customer);
    const foresee = confirmStep.foresee;
    let asked = 0;
    confirmStep.foresee = () => {
      asked += 1;
      return { output: { payment: 'not-this-one', status: 'completed' } };
    };
    try {
      const placed = await placeOrder(t, customer);
      expect(placed.statusCode, placed.body).toBe(201);
      const order = placed.json<Order>();
      expect(order).toMatchObject({ status: 'completed', paymentStatus: 'captured' });
      expect(asked).toBe(1);
      const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
        sql<{ output: { payment: string; status: string } }>`
          select st.output from checkout.saga_steps st join checkout.sagas s on s.id = st.saga_id
          where s.order_id = ${order.id} and st.step = 'confirm' and st.action = 'invoke'`.execute(trx),
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]!.output).toMatchObject({ status: 'completed' });
      expect(rows[0]!.output.payment).not.toBe('not-this-one');
      expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 2, reserved: 0 });
      const charges = await chargesOf(order.id);
      expect(charges).toHaveLength(1);
      expect(charges[0]).toMatchObject({ capturedAmount: order.totals.total });
    } finally {
      confirmStep.foresee = foresee;
    }
  });

  it('fails an order it cannot stock with 409 OUT_OF_STOCK and takes no payment', async () => {
    const scarce = await product(t, shop, 1);
    const cart = await readyCart(t, shop, [{ variant: scarce, quantity: 1 }]);
    // The stock goes after the cart was filled.
    const other = await readyCart(t, shop, [{ variant: scarce, quantity: 1 }]);
    expect((await placeOrder(t, other)).statusCode).toBe(201);
    const placed = await placeOrder(t, cart);
    expect(placed.statusCode, placed.body).toBe(409);
    const problem = placed.json<{ code: string; orderId: string; reason: string }>();
    expect(problem).toMatchObject({ code: 'OUT_OF_STOCK', reason: 'out_of_stock' });
    const order = await orderOf(t, shop, problem.orderId);
    expect(order).toMatchObject({ status: 'failed', failure: { reason: 'out_of_stock' } });
    expect(await chargesOf(order.id)).toHaveLength(0);
  });

  it('answers a declined card with 402 PAYMENT_DECLINED and gives the stock back', async () => {
    const item = await product(t, shop, 4);
    const cart = await readyCart(t, shop, [{ variant: item, quantity: 3 }]);
    const placed = await placeOrder(t, cart, 'tok_card_declined');
    expect(placed.statusCode, placed.body).toBe(402);
    const { orderId } = placed.json<{ orderId: string }>();
    expect(await orderOf(t, shop, orderId)).toMatchObject({
      status: 'failed',
      failure: { reason: 'payment_declined' },
    });
    expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 4, reserved: 0, available: 4 });
    const charges = await chargesOf(orderId);
    expect(charges.every((c) => c.capturedAmount === 0)).toBe(true);
    const saga = await sagaOf(orderId);
    expect(saga.steps.filter((s) => s.action === 'compensate').map((s) => s.step)).toEqual([
      'authorize',
      'reserve',
      'validate',
    ]);
  });

  it('times out a provider that hangs past the step deadline: the authorization is voided, the stock released', async () => {
    const item = await product(t, shop, 2);
    const cart = await readyCart(t, shop, [{ variant: item, quantity: 2 }]);
    const placed = await placeOrder(t, cart, 'tok_hang');
    expect(placed.statusCode, placed.body).toBe(504);
    const { orderId } = placed.json<{ orderId: string; code: string }>();
    expect(placed.json()).toMatchObject({ code: 'CHECKOUT_TIMEOUT' });
    expect(await orderOf(t, shop, orderId)).toMatchObject({
      status: 'failed',
      failure: { reason: 'timeout' },
    });
    expect(await stockOf(t, shop, item)).toMatchObject({ reserved: 0, available: 2 });
    const charges = await chargesOf(orderId);
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ status: 'voided', capturedAmount: 0 });
  });

  it('waits for a pending authorization and completes the order when the signed webhook confirms it', async () => {
    const item = await product(t, shop, 3);
    const cart = await readyCart(t, shop, [{ variant: item, quantity: 1 }]);
    const placed = await placeOrder(t, cart, 'tok_pending');
    expect(placed.statusCode, placed.body).toBe(202);
    const order = placed.json<Order>();
    expect(placed.headers.location).toBe(`/api/v1/orders/${order.id}`);
    expect(order.status).toBe('payment_processing');
    await confirmPending(t, shop.id, order.id);
    expect(await settled(t, shop, order.id)).toMatchObject({
      status: 'completed',
      paymentStatus: 'captured',
    });
    expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 2, reserved: 0 });
  });

  it('refunds and restocks an order cancelled after completion', async () => {
    const item = await product(t, shop, 3);
    const customer = await newCustomer(t, shop);
    await readyCart(t, shop, [{ variant: item, quantity: 2 }], customer);
    const placed = await placeOrder(t, customer);
    const order = placed.json<Order>();
    expect(order.status).toBe('completed');
    const cancelled = await send(t.app, 'PUT', `/api/v1/orders/${order.id}/cancel`, customer, {
      reason: 'changed my mind',
    });
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(cancelled.json<Order>()).toMatchObject({
      status: 'cancelled',
      paymentStatus: 'refunded',
      cancelReason: 'changed my mind',
    });
    expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 3, reserved: 0 });
    const [charge] = await chargesOf(order.id);
    expect(charge).toMatchObject({ capturedAmount: order.totals.total, refundedAmount: order.totals.total });
    // Without a body (no reason): the cancel is read as any other.
    const again = await send(t.app, 'PUT', `/api/v1/orders/${order.id}/cancel`, customer);
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'ILLEGAL_TRANSITION', from: 'cancelled', to: 'cancelled' });
  });
});
