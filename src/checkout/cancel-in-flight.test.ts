import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCustomer } from '../cart/cart-test-fixtures.ts';
import type { Order } from '../orders/index.ts';
import { withSystem } from '../platform/db/index.ts';
import {
  type CheckoutTestApp,
  createStore,
  placeOrder,
  product,
  readyCart,
  send,
  settled,
  startCheckoutApp,
  stockOf,
  until,
} from './checkout-test-fixtures.ts';

let t: CheckoutTestApp;
let shop: Awaited<ReturnType<typeof createStore>>;

beforeAll(async () => {
  // Every call to the test PSP takes 400 ms: long enough to cancel while one is out.
  t = await startCheckoutApp({ MERCATO_TEST_PSP_LATENCY_MS: '400' });
  shop = await createStore(t, 'cancel-in-flight-shop');
});
afterAll(() => t.close());

/** The order whose `step` has started and not finished (its call is out), once there is one. */
async function inFlight(step: 'authorize' | 'confirm' = 'authorize'): Promise<string> {
  let orderId: string | undefined;
  await until(async () => {
    const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
      sql<{ order_id: string }>`
        select s.order_id from checkout.saga_steps st join checkout.sagas s on s.id = st.saga_id
        where st.tenant_id = ${shop.id} and st.step = ${step} and st.action = 'invoke'
          and st.status = 'started'`.execute(trx),
    );
    orderId = rows[0]?.order_id;
    return orderId !== undefined;
  }, `a ${step} call in flight`);
  return orderId!;
}
const authorizing = () => inFlight('authorize');

describe('a cancel asked while the authorization is out', () => {
  it('is seen before the confirm step: nothing committed or captured, the payment voided, the stock back', async () => {
    const item = await product(t, shop, 4);
    const customer = await newCustomer(t, shop);
    await readyCart(t, shop, [{ variant: item, quantity: 3 }], customer);
    const placing = placeOrder(t, customer);
    const orderId = await authorizing();
    const cancel = await send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, shop.staff, {
      reason: 'fraud check',
    });
    expect(cancel.statusCode, cancel.body).toBeLessThan(300);
    // Cancelled during its checkout: answered as a failure is, naming the order (202 instead when
    // the run outlasted the inline budget).
    const placed = await placing;
    if (placed.statusCode === 202) expect(placed.json<Order>()).toMatchObject({ id: orderId });
    else
      expect(placed.json()).toMatchObject({
        status: 409,
        code: 'ORDER_CANCELLED',
        orderId,
        reason: 'cancelled',
      });
    expect(await settled(t, shop, orderId)).toMatchObject({
      status: 'cancelled',
      paymentStatus: 'voided',
      cancelReason: 'fraud check',
    });
    expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 4, reserved: 0 });
    const saga = await send(t.app, 'GET', `/api/v1/orders/${orderId}/saga`, shop.staff);
    const steps = saga.json<{ steps: { step: string; action: string; status: string }[] }>().steps;
    expect(steps.filter((s) => s.step === 'confirm' && s.action === 'invoke')).toEqual([]);
    expect(steps).toContainEqual(
      expect.objectContaining({ step: 'authorize', action: 'invoke', status: 'succeeded' }),
    );
    const charges = (await t.payments.testProvider.ledger(shop.id)).charges.filter((c) =>
      c.idempotencyKey.includes(orderId),
    );
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ status: 'voided', capturedAmount: 0 });
  });
});

describe('a cancel asked while the capture is out', () => {
  it('is not lost: the order completes, then is refunded, restocked and cancelled', async () => {
    const item = await product(t, shop, 4);
    const customer = await newCustomer(t, shop);
    await readyCart(t, shop, [{ variant: item, quantity: 2 }], customer);
    const placing = placeOrder(t, customer);
    const orderId = await inFlight('confirm');
    const cancel = await send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, customer, {
      reason: 'changed my mind',
    });
    // Accepted while the checkout finishes: the cancel is promised.
    expect(cancel.statusCode, cancel.body).toBe(202);
    await placing;
    expect(await settled(t, shop, orderId, ['cancelled'])).toMatchObject({
      status: 'cancelled',
      paymentStatus: 'refunded',
      cancelReason: 'changed my mind',
    });
    expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 4, reserved: 0 });
    const charges = (await t.payments.testProvider.ledger(shop.id)).charges.filter((c) =>
      c.idempotencyKey.includes(orderId),
    );
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({
      capturedAmount: charges[0]!.amount,
      refundedAmount: charges[0]!.amount,
    });
    const saga = await send(t.app, 'GET', `/api/v1/orders/${orderId}/saga`, shop.staff);
    expect(saga.json()).toMatchObject({ status: 'cancelled' });
  });
});

describe('two cancels of a completed order at once', () => {
  it('both answer the cancel under way, and the order is refunded once', async () => {
    const item = await product(t, shop, 4);
    const customer = await newCustomer(t, shop);
    await readyCart(t, shop, [{ variant: item, quantity: 2 }], customer);
    const placed = await placeOrder(t, customer);
    expect(placed.statusCode, placed.body).toBe(201);
    const orderId = placed.json<Order>().id;
    // The refund takes the PSP's 400 ms: the second cancel finds the first one's under way.
    const answers = await Promise.all([
      send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, customer, { reason: 'duplicate' }),
      send(t.app, 'PUT', `/api/v1/orders/${orderId}/status`, shop.staff, { status: 'cancelled' }),
    ]);
    for (const answer of answers) {
      expect(answer.statusCode, answer.body).toBeLessThan(300);
      expect(answer.json<Order>().id).toBe(orderId);
    }
    expect(await settled(t, shop, orderId, ['cancelled'])).toMatchObject({ paymentStatus: 'refunded' });
    expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 4, reserved: 0 });
    const charges = (await t.payments.testProvider.ledger(shop.id)).charges.filter((c) =>
      c.idempotencyKey.includes(orderId),
    );
    expect(charges).toHaveLength(1);
    expect(charges[0]).toMatchObject({ refundedAmount: charges[0]!.amount });
  });
});
