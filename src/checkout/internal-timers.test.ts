import { readFile } from 'node:fs/promises';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login } from '../identity/auth/auth-test-fixtures.ts';
import { withSystem, withTenant } from '../platform/db/index.ts';
import type { DomainEvent } from '../platform/events/index.ts';
import { newSecret, type Receiver, startReceiver } from '../wal/e2e/receiver.ts';
import type { WalModule } from '../wal/module.ts';
import {
  type CheckoutTestApp,
  completedOrder,
  createStore,
  send,
  startCheckoutApp,
  until,
} from './checkout-test-fixtures.ts';
import { WATCHDOG_TYPE, watchdogEvent } from './watchdog.ts';

// The checkout's watchdogs and a refund's recheck are Mercato's own timers on the tenant's
// order-events and payment-events: they carry the header mercato-internal, so only the modules'
// subscribers take them, never a tenant's webhook on those namespaces (it would see the saga's
// internals and weigh on their delivery). Those a release before the header wrote, still waiting
// in the WAL (due, retrying, or dead letters to requeue), are marked by migration 0062.

const RECHECK_TYPE = 'mercato.payment.refund-recheck';
const TIMERS = [WATCHDOG_TYPE, RECHECK_TYPE];

let t: CheckoutTestApp;
let receiver: Receiver;
let shop: Awaited<ReturnType<typeof createStore>>;
let admin: Record<string, string>;

beforeAll(async () => {
  receiver = await startReceiver();
  t = await startCheckoutApp({
    MERCATO_WAL_PRIVATE_TARGETS: `127.0.0.1:${new URL(receiver.url).port}`,
    // A watchdog, and a refund's recheck, come a step's timeout and a second after they are written.
    MERCATO_CHECKOUT_STEP_TIMEOUT_MS: '1000',
  });
  shop = await createStore(t, 'internal-timers-shop');
  admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
  // The tenant's webhook takes every type of both namespaces.
  for (const namespace of ['order-events', 'payment-events']) {
    const hook = { name: 'shop-hook', type: 'http', url: receiver.url, secret: newSecret(), timeoutMs: 2000 };
    const put = await send(t.app, 'PUT', `/api/v1/wal/namespaces/${namespace}`, admin, { targets: [hook] });
    expect(put.statusCode, put.body).toBe(200);
  }
});
afterAll(async () => {
  await t?.close();
  await receiver?.close();
});

const db = () => t.ctx.db.kysely as Kysely<unknown>;
const wal = () => t.modules.find((m) => m.name === 'wal') as WalModule;
const hooked = (type: string) => receiver.received.filter((r) => r.event['type'] === type);

/** The tenant's messages of the timers' types, with their state. */
async function timers(): Promise<{ message_id: string; type: string; state: string; internal: boolean }[]> {
  const { rows } = await withSystem(db(), (trx) =>
    sql<{ message_id: string; type: string; state: string; internal: boolean }>`
      select message_id, headers->>'ce-type' as type, state, headers ? 'mercato-internal' as internal
      from wal.messages where tenant_id = ${shop.id} and headers->>'ce-type' in (${sql.join(TIMERS)})
      order by id`.execute(trx),
  );
  return rows;
}

/** Waits until every timer written so far was delivered (to every target that takes it). */
const allDelivered = () =>
  until(async () => (await timers()).every((m) => m.state === 'delivered'), 'the timers delivered', 30_000);

/** A staff refund of 100 of the order's payment: its recheck is written with it. */
async function refundPart(orderId: string): Promise<{ refundId: string; paymentId: string }> {
  const list = await send(t.app, 'GET', `/api/v1/payments/order/${orderId}`, shop.staff);
  const payment = list.json<{ items: { id: string }[] }>().items[0]!;
  const refunded = await send(t.app, 'POST', `/api/v1/payments/${payment.id}/refund`, shop.staff, {
    amount: 100,
    reason: 'damaged',
    refundKey: `part-${orderId}`,
  });
  expect(refunded.statusCode, refunded.body).toBe(200);
  const { rows } = await withSystem(db(), (trx) =>
    sql<{ id: string }>`select id from payments.refunds where payment_id = ${payment.id}`.execute(trx),
  );
  return { refundId: rows[0]!.id, paymentId: payment.id };
}

async function sagaOf(orderId: string): Promise<string> {
  const { rows } = await withSystem(db(), (trx) =>
    sql<{ id: string }>`select id from checkout.sagas where order_id = ${orderId}`.execute(trx),
  );
  return rows[0]!.id;
}

describe("the checkout's watchdogs and a refund's recheck", () => {
  it('reach the modules’ subscribers only, never the tenant’s webhook on their namespace', async () => {
    const { order } = await completedOrder(t, shop);
    await refundPart(order.id);
    // A watchdog given as the checkout starts (watchdog-backfill.ts).
    await withSystem(db(), (trx) =>
      sql`insert into checkout.watchdog_backfill (saga_id, tenant_id, order_id)
        select id, tenant_id, order_id from checkout.sagas where order_id = ${order.id}`.execute(trx),
    );
    await t.checkout.start?.();
    await until(async () => (await timers()).length >= 3, 'the checkout’s watchdogs and the recheck');
    await allDelivered();
    const written = await timers();
    expect(new Set(written.map((m) => m.type))).toEqual(new Set(TIMERS));
    expect(written.every((m) => m.internal)).toBe(true);
    // The webhook got the domain events of both namespaces, none of the timers.
    await until(() => hooked('mercato.payment.refund-completed').length > 0, 'the refund’s event hooked');
    expect(hooked('mercato.order.created').length).toBeGreaterThan(0);
    for (const type of TIMERS) expect(hooked(type)).toEqual([]);
  }, 60_000);

  it('written by a release before the header and still waiting, are marked internal by migration 0062', async () => {
    const { order } = await completedOrder(t, shop);
    const refund = await refundPart(order.id);
    await allDelivered();
    const sagaId = await sagaOf(order.id);
    // As a release before wrote them: no header. Two are due soon, one died there.
    const unmarked = (event: DomainEvent): DomainEvent => ({ ...event, internal: undefined });
    const publish = (topic: 'order-events' | 'payment-events', events: DomainEvent[]) =>
      withTenant(db(), shop.id, (trx) => wal().events.publish(trx, shop.id, topic, events, {}));
    await publish('order-events', [unmarked(watchdogEvent(sagaId, order.id, 3000))]);
    await publish('payment-events', [
      unmarked({
        type: RECHECK_TYPE,
        subject: `refund-${refund.refundId}`,
        data: { ...refund, attempt: 1 },
        delayMs: 3000,
      }),
    ]);
    await publish('order-events', [unmarked(watchdogEvent(sagaId, order.id, 600_000, 'old-chain'))]);
    const dead = (await timers()).at(-1)!;
    await withSystem(db(), (trx) =>
      sql`update wal.messages set state = 'dead', dead_at = now(), last_error = 'shop-hook: 400'
        where message_id = ${dead.message_id}`.execute(trx),
    );
    expect((await timers()).filter((m) => !m.internal)).toHaveLength(3);

    // Migration 0062, run as the migrator runs it (the owner, the whole file).
    const text = await readFile(
      new URL('../../migrations/0062_checkout_payments_internal_timers.sql', import.meta.url),
      'utf8',
    );
    await t.ctx.db.withScriptRunner((runner) => runner.exec(text));

    expect((await timers()).filter((m) => !m.internal)).toEqual([]);
    // The dead letter requeued (the tenant admin may): it goes to the checkout's subscriber alone.
    const requeued = await send(
      t.app,
      'POST',
      `/api/v1/wal/namespaces/order-events/dlq/${dead.message_id}/requeue`,
      admin,
    );
    expect(requeued.statusCode, requeued.body).toBe(202);
    await allDelivered();
    for (const type of TIMERS) expect(hooked(type)).toEqual([]);
  }, 60_000);
});
