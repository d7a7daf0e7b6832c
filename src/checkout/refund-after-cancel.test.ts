import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCustomer } from '../cart/cart-test-fixtures.ts';
import type { Order } from '../orders/index.ts';
import type { Payment } from '../payments/index.ts';
import { withSystem } from '../platform/db/index.ts';
import { testDatabaseKind } from '../platform/testing/index.ts';
import {
  type CheckoutTestApp,
  createStore,
  placeOrder,
  product,
  readyCart,
  startCheckoutApp,
  until,
} from './checkout-test-fixtures.ts';

// A cancelled order keeps no money of its customer's, whatever a staff refund of it comes to
// after the cancel: the checkout gives back what a refund refused by the provider left held.
// Over real HTTP (a listening server and fetch), on each database.

let t: CheckoutTestApp;
let shop: Awaited<ReturnType<typeof createStore>>;
let base: string;

beforeAll(async () => {
  // A short step deadline: the watchdog, which resumes a saga whose run was lost, comes soon. The
  // operator's retries of Mercato's own deliveries (the watchdog's) are quick.
  t = await startCheckoutApp({
    MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '1000',
    MERCATO_WAL_SYSTEM_RETRY_BASE_MS: '100',
    MERCATO_WAL_SYSTEM_RETRY_MAX_MS: '500',
  });
  shop = await createStore(t, 'refund-after-cancel-shop');
  base = await t.app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(() => t?.close());

/** One request to the listening server: its status and its JSON body. */
async function http<T = Record<string, unknown>>(
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; json: T }> {
  const response = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as T };
}

const db = () => t.ctx.db.kysely;
const paymentOf = async (id: string) => {
  const read = await http<Payment>('GET', `/payments/${id}`, shop.staff);
  expect(read.status, JSON.stringify(read.json)).toBe(200);
  return read.json;
};
const orderOf = async (id: string) => (await http<Order>('GET', `/orders/${id}`, shop.staff)).json;
const sagaOf = async (orderId: string) =>
  (
    await http<{
      status: string;
      step: string;
      steps: { step: string; action: string; status: string; output: unknown; error: unknown }[];
    }>('GET', `/orders/${orderId}/saga`, shop.staff)
  ).json;
const chargeOf = async (payment: Payment) =>
  (await t.payments.testProvider.ledger(shop.id)).charges.find(
    (c) => c.id === payment.providerTransactionId,
  )!;

/** How many of the order's watchdogs (delayed WAL messages of its saga) are still to come. */
async function watchdogsWaiting(orderId: string): Promise<number> {
  const { rows } = await withSystem(db(), (trx) =>
    sql<{ n: number | string }>`select count(*) as n from wal.messages
      where namespace = 'order-events' and headers->>'ce-type' = 'mercato.checkout.watchdog'
        and payload->>'orderId' = ${orderId} and state not in ('delivered', 'dead')`.execute(trx),
  );
  return Number(rows[0]?.n ?? 0);
}

/** A customer's order of one unit, completed by its checkout, with its payment. */
async function completedOrder() {
  const item = await product(t, shop, 3);
  const customer = await newCustomer(t, shop);
  await readyCart(t, shop, [{ variant: item, quantity: 1 }], customer);
  const placed = await placeOrder(t, customer);
  expect(placed.statusCode, placed.body).toBe(201);
  const order = placed.json<Order>();
  const listed = await http<{ items: Payment[] }>('GET', `/payments/order/${order.id}`, shop.staff);
  const payment = listed.json.items[0]!;
  expect(payment).toMatchObject({ status: 'completed', amount: order.totals.total });
  return { customer, order, payment };
}

/** The PSP cannot be reached for refunds: each refund call throws (no answer). */
async function refundsUnreachable<T>(during: () => Promise<T>): Promise<T> {
  await sql`create or replace function test_psp.unreachable() returns trigger language plpgsql as $$
    begin raise exception 'connection reset'; end $$`.execute(db());
  await sql`create trigger unreachable before insert on test_psp.operations for each row
    when (new.kind = 'refund') execute function test_psp.unreachable()`.execute(db());
  try {
    return await during();
  } finally {
    await sql`drop trigger unreachable on test_psp.operations`.execute(db());
  }
}

/**
 * The PSP's answer to the refund of `amount` under staff's `refundKey` is a refusal: the answer
 * it keeps for that idempotency key, replayed to the call (as a PSP refuses a refund of a
 * disputed charge). Other refunds of the charge go through.
 */
async function pspRefuses(payment: Payment, refundKey: string, amount: number) {
  await sql`insert into test_psp.operations (id, merchant_id, idempotency_key, kind, amount, result)
    values (gen_random_uuid(), ${shop.id}, ${`refund:${payment.id}:${refundKey}`}, 'refund', ${amount},
      ${JSON.stringify({ status: 'error', message: 'the charge is disputed' })}::jsonb)`.execute(db());
}

describe('a staff refund of a cancelled order that the provider refuses', () => {
  it('is given back by the checkout: the payment ends refunded in full, the order cancelled', async () => {
    const { customer, order, payment } = await completedOrder();
    const total = order.totals.total;

    // Staff refund 600 of it; the provider call fails, so the refund stays pending, holding 600.
    const cut = await refundsUnreachable(() =>
      http('POST', `/payments/${payment.id}/refund`, shop.staff, {
        amount: 600,
        reason: 'damaged in transit',
        refundKey: 'staff-damaged',
      }),
    );
    expect(cut.status, JSON.stringify(cut.json)).toBe(502);
    expect(cut.json).toMatchObject({ code: 'PAYMENT_PROVIDER_ERROR', refundKey: 'staff-damaged' });

    // The order is cancelled: its checkout gives back all the pending refund leaves.
    const cancelled = await http<Order>('PUT', `/orders/${order.id}/cancel`, customer, { reason: 'no' });
    expect(cancelled.status, JSON.stringify(cancelled.json)).toBe(200);
    expect(cancelled.json).toMatchObject({ status: 'cancelled' });
    expect(await paymentOf(payment.id)).toMatchObject({
      status: 'partially_refunded',
      refundedAmount: total - 600,
    });

    // Staff ask again with the same refundKey, and the provider refuses it: the refund failed.
    await pspRefuses(payment, 'staff-damaged', 600);
    const refused = await http('POST', `/payments/${payment.id}/refund`, shop.staff, {
      amount: 600,
      reason: 'damaged in transit',
      refundKey: 'staff-damaged',
    });
    expect(refused.status, JSON.stringify(refused.json)).toBe(502);
    expect(refused.json).toMatchObject({ code: 'PAYMENT_PROVIDER_ERROR' });

    // The checkout gives the 600 back under its next key: nothing of the customer's stays held.
    await until(async () => (await paymentOf(payment.id)).status === 'refunded', 'the payment refunded');
    expect(await paymentOf(payment.id)).toMatchObject({ status: 'refunded', refundedAmount: total });
    await until(async () => (await sagaOf(order.id)).status === 'cancelled', 'the saga finished again');
    expect(await orderOf(order.id)).toMatchObject({ status: 'cancelled', paymentStatus: 'refunded' });
    const charge = await chargeOf(payment);
    expect(charge).toMatchObject({ capturedAmount: total, refundedAmount: total });
    const { rows } = await sql<{
      idempotency_key: string;
      amount: string | number;
      result: { status: string };
    }>`
      select idempotency_key, amount, result from test_psp.operations
      where kind = 'refund' and charge_id = ${charge.id} and result->>'status' = 'refunded'
      order by created_at`.execute(db());
    expect(rows.map((r) => [r.idempotency_key, Number(r.amount)])).toEqual([
      [`refund:${payment.id}:order-${order.id}-refund`, total - 600],
      [`refund:${payment.id}:order-${order.id}-refund-2`, 600],
    ]);
    // The saga's log shows the give-back done again after the refusal.
    const saga = await sagaOf(order.id);
    const givenBack = saga.steps.filter(
      (s) => s.step === 'authorize' && s.action === 'compensate' && s.status === 'succeeded',
    );
    expect(givenBack).toHaveLength(2);
  }, 60_000);

  it('leaves a completed order alone: staff refunds of a live order are staff’s', async () => {
    const { payment } = await completedOrder();
    await pspRefuses(payment, 'staff-live', 300);
    const refused = await http('POST', `/payments/${payment.id}/refund`, shop.staff, {
      amount: 300,
      reason: 'goodwill',
      refundKey: 'staff-live',
    });
    expect(refused.status, JSON.stringify(refused.json)).toBe(502);
    // The checkout has taken the refusal's event, and changed nothing.
    await until(async () => {
      const { rows } = await withSystem(db(), (trx) =>
        sql<{ state: string }>`select state from wal.messages
          where namespace = 'payment-events' and headers->>'ce-type' = 'mercato.payment.refund-failed'
            and headers->>'ce-subject' = ${payment.id}`.execute(trx),
      );
      return rows[0]?.state === 'delivered';
    }, 'the refusal delivered');
    expect(await paymentOf(payment.id)).toMatchObject({ status: 'completed', refundedAmount: 0 });
    expect(await orderOf(payment.orderId)).toMatchObject({ status: 'completed' });
    expect((await sagaOf(payment.orderId)).status).toBe('completed');
  });
});

// PostgreSQL only: another session holds the run between two of its transactions (PGlite has one).
describe.runIf(testDatabaseKind() === 'postgres')('a staff refund refused while the cancel is undone', () => {
  it('is given back before the order closes: the refusal came after the give-back, before the order was cancelled', async () => {
    const { customer, order, payment } = await completedOrder();
    const total = order.totals.total;
    const cut = await refundsUnreachable(() =>
      http('POST', `/payments/${payment.id}/refund`, shop.staff, {
        amount: 500,
        reason: 'damaged in transit',
        refundKey: 'staff-during',
      }),
    );
    expect(cut.status, JSON.stringify(cut.json)).toBe(502);
    // Stock movements wait (the ledger held in SHARE mode): the run stops in undoing reserve, after
    // it gave back all the pending refund leaves, before it closes the order.
    const client = new pg.Client({ connectionString: t.databaseUrl });
    await client.connect();
    await client.query('begin');
    await client.query('lock table inventory.ledger in share mode');
    try {
      const cancel = await http('PUT', `/orders/${order.id}/cancel`, customer, { reason: 'no' });
      expect(cancel.status, JSON.stringify(cancel.json)).toBe(202);
      await until(async () => {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_locks
          where locktype = 'relation' and relation = 'inventory.ledger'::regclass and not granted`.execute(
          db(),
        );
        return rows[0]!.n > 0;
      }, 'the run waiting to put the stock back');
      expect(await paymentOf(payment.id)).toMatchObject({
        status: 'partially_refunded',
        refundedAmount: total - 500,
      });
      // Now the provider refuses staff's refund; the checkout takes the event while the saga is
      // still undone (compensating), and leaves it to the run.
      await pspRefuses(payment, 'staff-during', 500);
      const refused = await http('POST', `/payments/${payment.id}/refund`, shop.staff, {
        amount: 500,
        reason: 'damaged in transit',
        refundKey: 'staff-during',
      });
      expect(refused.status, JSON.stringify(refused.json)).toBe(502);
      await until(async () => {
        const { rows } = await withSystem(db(), (trx) =>
          sql<{ state: string }>`select state from wal.messages
            where namespace = 'payment-events' and headers->>'ce-type' = 'mercato.payment.refund-failed'
              and headers->>'ce-subject' = ${payment.id}`.execute(trx),
        );
        return rows[0]?.state === 'delivered';
      }, 'the refusal delivered');
      expect((await sagaOf(order.id)).status).toBe('compensating');
    } finally {
      await client.query('commit');
      await client.end();
    }
    // The run, before it closes the order, finds the money held again and gives it back.
    await until(async () => (await sagaOf(order.id)).status === 'cancelled', 'the saga finished');
    expect(await paymentOf(payment.id)).toMatchObject({ status: 'refunded', refundedAmount: total });
    expect(await orderOf(order.id)).toMatchObject({ status: 'cancelled', paymentStatus: 'refunded' });
    expect(await chargeOf(payment)).toMatchObject({ capturedAmount: total, refundedAmount: total });
  }, 60_000);
});

describe('a give-back the provider refuses', () => {
  it('is retried under a new refund key: once the provider takes it, the order ends cancelled and refunded', async () => {
    const { customer, order, payment } = await completedOrder();
    const total = order.totals.total;
    // The PSP refuses the checkout's refund of it (refunded elsewhere, its books say).
    await sql`update test_psp.charges set refunded_amount = captured_amount
      where id = ${payment.providerTransactionId}`.execute(db());
    // A cancel some time after the checkout: the order's watchdogs have found its saga completed.
    await until(async () => (await watchdogsWaiting(order.id)) === 0, 'the checkout’s watchdogs done');
    const cancel = await http('PUT', `/orders/${order.id}/cancel`, customer, { reason: 'no' });
    expect(cancel.status, JSON.stringify(cancel.json)).toBeLessThan(300);
    // The cancel's run and the one it kicks each spend their attempts, and give the saga up.
    await until(async () => {
      const saga = await sagaOf(order.id);
      const failed = saga.steps.filter((s) => s.action === 'compensate' && s.status === 'failed').length;
      const { rows } = await withSystem(db(), (trx) =>
        sql<{ lease_owner: string | null }>`select lease_owner from checkout.sagas
          where order_id = ${order.id}`.execute(trx),
      );
      return failed >= 6 && rows[0]?.lease_owner === null;
    }, 'the refund refused by the runs the cancel started');
    // Visible meanwhile: the saga compensates, the payment holds its money, the order is not cancelled.
    expect(await sagaOf(order.id)).toMatchObject({ status: 'compensating', step: 'authorize' });
    expect(await paymentOf(payment.id)).toMatchObject({ status: 'completed', refundedAmount: 0 });
    expect((await orderOf(order.id)).status).toBe('completed');

    // The PSP's books are put right: the watchdog (armed by the cancel) runs the saga again,
    // which gives the money back under a key the provider has not refused.
    await sql`update test_psp.charges set refunded_amount = 0
      where id = ${payment.providerTransactionId}`.execute(db());
    await until(async () => (await orderOf(order.id)).status === 'cancelled', 'the order cancelled', 60_000);
    expect(await orderOf(order.id)).toMatchObject({ status: 'cancelled', paymentStatus: 'refunded' });
    expect(await paymentOf(payment.id)).toMatchObject({ status: 'refunded', refundedAmount: total });
    expect(await chargeOf(payment)).toMatchObject({ capturedAmount: total, refundedAmount: total });
    expect((await sagaOf(order.id)).status).toBe('cancelled');
  }, 90_000);
});
