import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCustomer } from '../cart/cart-test-fixtures.ts';
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
  // A short step deadline: a hanging provider (tok_hang) times out while a cancel waits for it.
  // Every PSP call takes 400 ms: the void that undoes it is out long enough to cancel again.
  // POST /orders waits for the run to end however slow the machine (its answer is the subject).
  t = await startCheckoutApp({
    MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '1500',
    MERCATO_TEST_PSP_LATENCY_MS: '400',
    MERCATO_CHECKOUT_INLINE_MS: '30000',
  });
  shop = await createStore(t, 'cancel-deadline-shop');
});
afterAll(() => t.close());

/** The order whose authorization is out (started, not finished), once there is one. */
async function authorizing(): Promise<string> {
  let orderId: string | undefined;
  await until(async () => {
    const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
      sql<{ order_id: string }>`
        select s.order_id from checkout.saga_steps st join checkout.sagas s on s.id = st.saga_id
        where st.tenant_id = ${shop.id} and st.step = 'authorize' and st.action = 'invoke'
          and st.status = 'started' and s.status = 'running'`.execute(trx),
    );
    orderId = rows[0]?.order_id;
    return orderId !== undefined;
  }, 'an authorization in flight');
  return orderId!;
}

describe('a cancel asked while a step is out, which then times out', () => {
  it('is honoured: the order ends cancelled with the cancel’s reason, not failed (timeout)', async () => {
    const item = await product(t, shop, 3);
    const customer = await newCustomer(t, shop);
    await readyCart(t, shop, [{ variant: item, quantity: 2 }], customer);
    const key = `cancel-deadline-${Date.now()}`;
    const placing = placeOrder(t, customer, 'tok_hang', key);
    const orderId = await authorizing();
    const cancel = await send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, customer, {
      reason: 'ordered by mistake',
    });
    // The provider still holds the call: the cancel is promised.
    expect(cancel.statusCode, cancel.body).toBe(202);
    // The step times out and its compensations run: a second cancel meanwhile is answered as the
    // first was, not refused as the undoing of a failed checkout.
    await until(async () => {
      const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
        sql<{ status: string }>`select status from checkout.sagas where order_id = ${orderId}`.execute(trx),
      );
      return rows[0]?.status === 'compensating';
    }, 'the saga compensating');
    const second = await send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, customer, {});
    expect(second.statusCode, second.body).toBeLessThan(300);
    // The checkout's own answer names the order it made and says it was cancelled, as a failure's
    // problem does (not 201 Created), and so does a replay of its Idempotency-Key.
    const placed = await placing;
    expect(placed.statusCode, placed.body).toBe(409);
    expect(placed.json()).toMatchObject({
      code: 'ORDER_CANCELLED',
      orderId,
      orderNumber: expect.any(Number),
      reason: 'cancelled',
    });
    expect(await settled(t, shop, orderId)).toMatchObject({
      status: 'cancelled',
      cancelReason: 'ordered by mistake',
      failure: null,
    });
    const charges = (await t.payments.testProvider.ledger(shop.id)).charges.filter((c) =>
      c.idempotencyKey.includes(orderId),
    );
    expect(charges.map((c) => [c.status, c.capturedAmount])).toEqual([['voided', 0]]);
    expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 3, reserved: 0 });
    const saga = await send(t.app, 'GET', `/api/v1/orders/${orderId}/saga`, shop.staff);
    // The saga says what happened: cancelled, after the step's timeout (kept in its log).
    expect(saga.json()).toMatchObject({
      status: 'cancelled',
      failure: { reason: 'timeout' },
      cancelRequested: { reason: 'ordered by mistake' },
    });
    // Cancelled it stays.
    const again = await send(t.app, 'PUT', `/api/v1/orders/${orderId}/cancel`, customer, {});
    expect([again.statusCode, again.json().code]).toEqual([409, 'ILLEGAL_TRANSITION']);
    const replay = await placeOrder(t, customer, 'tok_hang', key);
    expect(replay.statusCode, replay.body).toBe(409);
    expect(replay.json()).toMatchObject({ code: 'ORDER_CANCELLED', orderId, reason: 'cancelled' });
  });
});

describe('a checkout whose payment failed', () => {
  it('leaves the order saying its payment failed, not pending', async () => {
    const item = await product(t, shop, 3);
    const cart = await readyCart(t, shop, [{ variant: item, quantity: 1 }]);
    const placed = await placeOrder(t, cart, 'tok_card_declined');
    expect(placed.statusCode, placed.body).toBe(402);
    expect(await settled(t, shop, placed.json().orderId)).toMatchObject({
      status: 'failed',
      failure: { reason: 'payment_declined' },
      paymentStatus: 'failed',
    });
  });
});
