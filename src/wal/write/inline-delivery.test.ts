import { type Kysely, sql, type Transaction } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../../platform/db/index.ts';
import type { ReceivedEvent } from '../../platform/events/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { newSecret, type Receiver, startReceiver, until } from '../e2e/receiver.ts';
import { createWal, type WalModule } from '../index.ts';

// Inline delivery (inline-delivery.ts): a tenant's write to an inbound system namespace runs the
// module's inline subscriber in the write's own transaction, as the exception collector's capture
// of interface-exceptions does; here a subscriber of the test's own records what it got.
describe('inline delivery of a tenant write to its inbound namespace', () => {
  let t: TestApp;
  let wal: WalModule;
  let receiver: Receiver;
  let shop: TestTenant;
  let admin: Record<string, string>;
  /** Every event the subscriber handled (committed or not: a failed call records nothing). */
  const handled: ReceivedEvent[] = [];
  /** Events to fail the first time they are handled, by transactionId; then handled as usual. */
  const failOnce = new Set<string>();

  beforeAll(async () => {
    receiver = await startReceiver();
    const port = new URL(receiver.url).port;
    t = await startTestApp(
      { MERCATO_WAL_PRIVATE_TARGETS: `127.0.0.1:${port}` },
      {
        modules: async (ctx) => {
          wal = await createWal(ctx);
          wal.acceptWrites('interface-exceptions', () => []);
          // Announces what it handled (a domain event in its transaction), then fails if asked.
          const take = async (trx: Transaction<unknown>, events: ReceivedEvent[]) => {
            const ids = events.map((e) => (e.data as { transactionId: string }).transactionId);
            await wal.events.publish(
              trx,
              events[0]!.tenantid,
              'notification-events',
              ids.map((id) => ({ type: 'mercato.test.handled', subject: id, data: { id } })),
            );
            const failing = ids.filter((id) => failOnce.delete(id));
            if (failing.length > 0) throw new Error(`refused ${failing.join(', ')} once`);
            handled.push(...events);
          };
          wal.events.subscribe({
            name: 'test.inbound',
            topic: 'interface-exceptions',
            types: ['*'],
            handle: (trx, event) => take(trx, [event]),
            handleMany: (trx, events) => take(trx, events),
            inline: true,
          });
          return [wal];
        },
      },
    );
    shop = await createTestTenant(t, 'inline-delivery');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  const db = () => t.ctx.db.kysely as Kysely<unknown>;
  const write = (messages: { messageId?: string; transactionId: string; note?: string }[]) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/wal/write/batch',
      headers: admin,
      payload: {
        namespace: 'interface-exceptions',
        messages: messages.map((m) => ({
          ...(m.messageId ? { messageId: m.messageId } : {}),
          payload: { transactionId: m.transactionId, note: m.note ?? 'x' },
          headers: { 'ce-type': 'OrderRejected' },
        })),
      },
    });
  const handledIds = (transactionId: string) =>
    handled.filter((e) => (e.data as { transactionId: string }).transactionId === transactionId).length;
  const stored = (messageId: string) =>
    withTenant(db(), shop.id, async (trx) => {
      const { rows } = await sql<{ state: string; targets_done: string[]; attempts: number; inbox: number }>`
        select m.state, m.targets_done, m.attempts,
          (select count(*)::int from wal.inbox i where i.message_pk = m.id) as inbox
        from wal.messages m where m.namespace = 'interface-exceptions' and m.message_id = ${messageId}`.execute(
        trx,
      );
      return rows[0];
    });

  const announced = (subject: string) =>
    withTenant(db(), shop.id, async (trx) => {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from wal.messages
        where namespace = 'notification-events' and headers->>'ce-subject' = ${subject}`.execute(trx);
      return rows[0]!.n;
    });

  it('handles the messages before the 202, stores them delivered with the target done, and never delivers them again', async () => {
    const response = await write([
      { messageId: 'in-1', transactionId: 'T-1' },
      { messageId: 'in-2', transactionId: 'T-2' },
    ]);
    expect(response.statusCode, response.body).toBe(202);
    // In the write's transaction: handled by the time it answered, one call for the batch.
    expect(handledIds('T-1')).toBe(1);
    expect(handledIds('T-2')).toBe(1);
    expect(await stored('in-1')).toEqual({
      state: 'delivered',
      targets_done: ['test.inbound'],
      attempts: 1,
      inbox: 0,
    });
    // The engine has nothing to deliver, and a replay of the write delivers nothing again.
    const replay = await write([
      { messageId: 'in-1', transactionId: 'T-1' },
      { messageId: 'in-2', transactionId: 'T-2' },
    ]);
    expect(replay.statusCode, replay.body).toBe(202);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(handledIds('T-1')).toBe(1);
    expect(handledIds('T-2')).toBe(1);
    expect(await announced('T-1')).toBe(1);
  });

  it('writes nothing and handles nothing when a messageId exists with another body (409)', async () => {
    expect((await write([{ messageId: 'in-3', transactionId: 'T-3' }])).statusCode).toBe(202);
    const conflict = await write([
      { messageId: 'in-4', transactionId: 'T-4' },
      { messageId: 'in-3', transactionId: 'T-3', note: 'another body' },
    ]);
    expect(conflict.statusCode, conflict.body).toBe(409);
    expect(conflict.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(handledIds('T-4')).toBe(0);
    expect(await stored('in-4')).toBeUndefined();
    expect(handledIds('T-3')).toBe(1);
  });

  it('leaves the messages to the delivery engine when the subscriber fails inline: handled once, later', async () => {
    failOnce.add('T-5');
    const response = await write([
      { messageId: 'in-5', transactionId: 'T-5' },
      { messageId: 'in-6', transactionId: 'T-6' },
    ]);
    expect(response.statusCode, response.body).toBe(202);
    expect(handledIds('T-5')).toBe(0);
    // The engine delivers both (through the inbox), each once.
    await until(async () => handledIds('T-5') === 1 && handledIds('T-6') === 1, 'the engine delivers them');
    await until(async () => (await stored('in-5'))?.state === 'delivered', 'recorded delivered');
    expect(await stored('in-5')).toMatchObject({ targets_done: ['test.inbound'], inbox: 1 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(handledIds('T-5')).toBe(1);
    expect(handledIds('T-6')).toBe(1);
    // The failed inline call's event was rolled back with it: one event each, the engine's call's.
    expect(await announced('T-5')).toBe(1);
    expect(await announced('T-6')).toBe(1);
  });

  it("keeps a message pending for the tenant's own webhook on the namespace, which the engine then reaches", async () => {
    const hook = {
      name: 'erp-mirror',
      type: 'http',
      url: receiver.url,
      secret: newSecret(),
      timeoutMs: 2000,
    };
    const put = await t.app.inject({
      method: 'PUT',
      url: '/api/v1/wal/namespaces/interface-exceptions',
      payload: { targets: [hook] },
      headers: admin,
    });
    expect(put.statusCode, put.body).toBe(200);
    const response = await write([{ messageId: 'in-7', transactionId: 'T-7' }]);
    expect(response.statusCode, response.body).toBe(202);
    expect(handledIds('T-7')).toBe(1);
    await until(
      async () =>
        receiver.received.some((r) => (r.event.data as { transactionId?: string })?.transactionId === 'T-7'),
      'the webhook receives it',
    );
    await until(async () => (await stored('in-7'))?.state === 'delivered', 'recorded delivered');
    expect((await stored('in-7'))?.targets_done.sort()).toEqual(['erp-mirror', 'test.inbound']);
    expect(handledIds('T-7')).toBe(1);
  });
});
