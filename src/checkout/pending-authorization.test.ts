import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Order } from '../orders/index.ts';
import { withSystem } from '../platform/db/index.ts';
import {
  type CheckoutTestApp,
  confirmPending,
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

type Shop = Awaited<ReturnType<typeof createStore>>;
type SagaView = {
  deadlineAt: string | null;
  steps: { step: string; action: string; attempt: number; status: string }[];
};

/** A pending checkout (the test provider answers tok_pending pending) on t. */
async function pendingOrder(t: CheckoutTestApp, shop: Shop) {
  const item = await product(t, shop, 3);
  const cart = await readyCart(t, shop, [{ variant: item, quantity: 1 }]);
  const placed = await placeOrder(t, cart, 'tok_pending');
  expect(placed.statusCode, placed.body).toBe(202);
  return { item, order: placed.json<Order>() };
}

const sagaOf = async (t: CheckoutTestApp, shop: Shop, orderId: string) => {
  const response = await send(t.app, 'GET', `/api/v1/orders/${orderId}/saga`, shop.staff);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<SagaView>();
};

describe('a pending authorization (3-D Secure, a bank redirect)', () => {
  let t: CheckoutTestApp;
  let shop: Shop;
  beforeAll(async () => {
    // Steps time out after 200 ms (a watchdog 1.2 s after a step's start; for a pending
    // authorization then twice as far apart each time); a pending one waits a minute.
    t = await startCheckoutApp({
      MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '200',
      MERCATO_CHECKOUT_PENDING_TIMEOUT_MS: '60000',
    });
    shop = await createStore(t, 'pending-shop');
  });
  afterAll(() => t?.close());

  it('is waited for past many step timeouts, asked again at each watchdog, and completes when the webhook confirms it', async () => {
    const { item, order } = await pendingOrder(t, shop);
    const placedAt = Date.now();
    // The watchdog has come at least three times (each asks the provider again: a new attempt).
    // Between attempts its deadline is the first attempt's start and a minute, whatever the
    // attempts since (an attempt under way has a step's deadline of its own meanwhile; the saga
    // and its steps are read apart, so the deadline itself tells which is seen).
    let saga!: SagaView;
    await until(async () => {
      saga = await sagaOf(t, shop, order.id);
      const attempts = saga.steps.filter((s) => s.step === 'authorize' && s.action === 'invoke');
      return attempts.length >= 3 && Date.parse(saga.deadlineAt ?? '') > placedAt + 50_000;
    }, 'three attempts of the pending authorization, its deadline a minute on');
    expect((await send(t.app, 'GET', `/api/v1/orders/${order.id}`, shop.staff)).json<Order>().status).toBe(
      'payment_processing',
    );
    const deadline = Date.parse(saga.deadlineAt!);
    expect(deadline).toBeLessThanOrEqual(placedAt + 60_000);

    await confirmPending(t, shop.id, order.id);
    expect(await settled(t, shop, order.id)).toMatchObject({
      status: 'completed',
      paymentStatus: 'captured',
    });
    expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 2, reserved: 0 });
    // One authorization however often it was asked, captured once.
    const charges = (await t.payments.testProvider.ledger(shop.id)).charges.filter((c) =>
      c.idempotencyKey.includes(order.id),
    );
    expect(charges).toHaveLength(1);
  }, 120_000);

  it('is asked twice as far apart each time while the webhook is awaited, not at every step timeout', async () => {
    const { order } = await pendingOrder(t, shop);
    // The saga's watchdogs in order-events: each one's delay, oldest first.
    const delays = () =>
      withSystem(t.ctx.db.kysely, async (trx) => {
        const { rows } = await sql<{ ms: number }>`
          select round(extract(epoch from m.due_at - m.created_at) * 1000)::int as ms
          from wal.messages m join checkout.sagas s on m.headers->>'ce-subject' = 'saga-' || s.id::text
          where s.order_id = ${order.id} and m.tenant_id = ${shop.id} and m.namespace = 'order-events'
          order by m.created_at, m.id`.execute(trx);
        return rows.map((r) => r.ms);
      });
    await until(async () => (await delays()).length >= 4, 'four watchdogs of the pending saga', 20_000);
    // Each delay as written: due (the writer's clock) minus created (its transaction's start), so a
    // little over the delay asked for.
    const written = (await delays()).slice(0, 4);
    const asked = [1200, 1200, 2400, 4800];
    expect(
      written.map((ms, i) => ms >= asked[i]! && ms < asked[i]! + 500),
      `${written}`,
    ).toEqual([true, true, true, true]);
    await confirmPending(t, shop.id, order.id);
    expect(await settled(t, shop, order.id)).toMatchObject({ status: 'completed' });
  }, 60_000);
});

describe('a pending authorization never settled', () => {
  let t: CheckoutTestApp;
  let shop: Shop;
  beforeAll(async () => {
    t = await startCheckoutApp({
      MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '200',
      MERCATO_CHECKOUT_PENDING_TIMEOUT_MS: '3000',
    });
    shop = await createStore(t, 'pending-lapse');
  });
  afterAll(() => t?.close());

  it('times out at its pending deadline, however often it was asked again: the authorization voided, the stock released, the order failed', async () => {
    const { item, order } = await pendingOrder(t, shop);
    expect(await settled(t, shop, order.id)).toMatchObject({
      status: 'failed',
      failure: { reason: 'timeout' },
    });
    // Asked again meanwhile (the watchdog comes every step timeout), which did not move the deadline.
    const { steps } = await sagaOf(t, shop, order.id);
    expect(
      steps.filter((s) => s.step === 'authorize' && s.action === 'invoke').length,
    ).toBeGreaterThanOrEqual(2);
    expect(await stockOf(t, shop, item)).toMatchObject({ onHand: 3, reserved: 0 });
    const [charge] = (await t.payments.testProvider.ledger(shop.id)).charges.filter((c) =>
      c.idempotencyKey.includes(order.id),
    );
    expect(charge).toMatchObject({ status: 'voided' });
  }, 120_000);
});
