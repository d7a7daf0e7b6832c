import { sql } from 'kysely';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Order } from '../orders/index.ts';
import type { Payment } from '../payments/index.ts';
import { withSystem } from '../platform/db/index.ts';
import {
  type CheckoutTestApp,
  createStore,
  completedOrder as placeCompleted,
  startCheckoutApp,
  until,
} from './checkout-test-fixtures.ts';

type Store = Awaited<ReturnType<typeof createStore>>;
export type RefundKit = ReturnType<typeof refundKit>;

/**
 * The test file's app (started with `env`) listening on a port of its own, its store and its
 * kit (refundKit), made before the file's tests and closed after them (beforeAll, afterAll).
 */
export function refundApp(slug: string, env: Record<string, string>) {
  const app = {} as { t: CheckoutTestApp; shop: Store; kit: RefundKit };
  beforeAll(async () => {
    app.t = await startCheckoutApp(env);
    app.shop = await createStore(app.t, slug);
    app.kit = refundKit(app.t, app.shop, await app.t.app.listen({ port: 0, host: '127.0.0.1' }));
  });
  afterAll(() => app.t?.close());
  return app;
}

/**
 * What the tests of money given back after a cancel or a failure share: requests to a listening
 * server (real HTTP), reads of the order, its saga and payments, and the test PSP made unreachable
 * or refusing. `base` is the server's address (app.listen).
 */
export function refundKit(t: CheckoutTestApp, shop: Store, base: string) {
  const db = () => t.ctx.db.kysely;

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

  const paymentOf = async (id: string) => {
    const read = await http<Payment>('GET', `/payments/${id}`, shop.staff);
    expect(read.status, JSON.stringify(read.json)).toBe(200);
    return read.json;
  };
  const paymentsOfOrder = async (orderId: string) =>
    (await http<{ items: Payment[] }>('GET', `/payments/order/${orderId}`, shop.staff)).json.items;
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

  /** Staff's POST /payments/{id}/refund of `amount` under `refundKey`. */
  const staffRefund = (payment: Payment, amount: number, refundKey: string, reason = 'damaged in transit') =>
    http('POST', `/payments/${payment.id}/refund`, shop.staff, { amount, reason, refundKey });
  /** The customer's PUT /orders/{id}/cancel (reason `no`). */
  const cancel = (orderId: string, customer: Record<string, string>) =>
    http<Order>('PUT', `/orders/${orderId}/cancel`, customer, { reason: 'no' });

  /** A new customer's order of one unit, completed by its checkout, with its (captured) payment. */
  async function completedOrder() {
    const { customer, order } = await placeCompleted(t, shop);
    const [payment] = await paymentsOfOrder(order.id);
    expect(payment).toMatchObject({ status: 'completed', amount: order.totals.total });
    return { customer, order, payment: payment! };
  }

  /** The saga's failed compensations so far, and whether no run holds it now. */
  async function failedUndoings(orderId: string): Promise<{ failed: number; idle: boolean }> {
    const saga = await sagaOf(orderId);
    const failed = saga.steps.filter((s) => s.action === 'compensate' && s.status === 'failed').length;
    const { rows } = await withSystem(db(), (trx) =>
      sql<{ lease_owner: string | null }>`select lease_owner from checkout.sagas
        where order_id = ${orderId}`.execute(trx),
    );
    return { failed, idle: rows[0]?.lease_owner === null };
  }

  /** How many of the order's watchdogs (delayed WAL messages of its saga) are still to come. */
  async function watchdogsWaiting(orderId: string): Promise<number> {
    const { rows } = await withSystem(db(), (trx) =>
      sql<{ n: number | string }>`select count(*) as n from wal.messages
        where namespace = 'order-events' and headers->>'ce-type' = 'mercato.checkout.watchdog'
          and payload->>'orderId' = ${orderId} and state not in ('delivered', 'dead')`.execute(trx),
    );
    return Number(rows[0]?.n ?? 0);
  }

  /** Waits until the checkout has taken the refund-failed event of the payment. */
  const refusalDelivered = (payment: Payment) =>
    until(async () => {
      const { rows } = await withSystem(db(), (trx) =>
        sql<{ state: string }>`select state from wal.messages
          where namespace = 'payment-events' and headers->>'ce-type' = 'mercato.payment.refund-failed'
            and headers->>'ce-subject' = ${payment.id}`.execute(trx),
      );
      return rows[0]?.state === 'delivered';
    }, 'the refusal delivered');

  /**
   * The PSP cannot be reached for its calls of `kind` (each throws, no answer; with `refundKey`,
   * only for the refunds under that key) until the returned function is called. An answer a test
   * stores for a key (pspRefuses) is stored all the same.
   */
  async function pspUnreachable(
    kind: 'refund' | 'capture' | 'void',
    refundKey?: string,
  ): Promise<() => Promise<void>> {
    const name = sql.id(refundKey ? `unreachable_${kind}_${refundKey}` : `unreachable_${kind}`);
    await sql`create or replace function test_psp.unreachable() returns trigger language plpgsql as $$
      begin raise exception 'connection reset'; end $$`.execute(db());
    await sql`create trigger ${name} before insert on test_psp.operations for each row
      when (new.kind = ${sql.lit(kind)} and new.result = '{}'::jsonb
        and new.idempotency_key like ${sql.lit(refundKey ? `%:${refundKey}` : '%')})
      execute function test_psp.unreachable()`.execute(db());
    return async () => {
      await sql`drop trigger if exists ${name} on test_psp.operations`.execute(db());
    };
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

  /**
   * Staff refund `amount` of the payment under `refundKey` while the provider cannot be reached
   * for it: 502 naming the key, the refund left pending (holding its amount), and asked again
   * (staff, its recheck) it stays so until the provider answers: `reach()` (the refund goes
   * through) or `refuse()` (the provider refuses it: pspRefuses).
   */
  async function staffRefundCut(payment: Payment, amount: number, refundKey: string) {
    const reach = await pspUnreachable('refund', refundKey);
    const cut = await staffRefund(payment, amount, refundKey);
    expect(cut.status, JSON.stringify(cut.json)).toBe(502);
    expect(cut.json).toMatchObject({ code: 'PAYMENT_PROVIDER_ERROR', refundKey });
    return {
      reach,
      async refuse() {
        await pspRefuses(payment, refundKey, amount);
        await reach();
      },
    };
  }

  return {
    db,
    http,
    completedOrder,
    staffRefund,
    cancel,
    paymentOf,
    paymentsOfOrder,
    orderOf,
    sagaOf,
    chargeOf,
    failedUndoings,
    watchdogsWaiting,
    refusalDelivered,
    pspUnreachable,
    staffRefundCut,
    pspRefuses,
  };
}
