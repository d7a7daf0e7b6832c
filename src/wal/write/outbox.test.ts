import type { Transaction } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../../platform/db/index.ts';
import { AppError } from '../../platform/http/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createNamespaceCache, type Namespace } from '../namespaces/index.ts';
import type { WalTables } from '../tables.ts';
import { writeMessages } from './index.ts';
import { addNamespace, countMessages, walDb } from './write-test-fixtures.ts';

describe('transactional outbox (writeMessages)', () => {
  let t: TestApp;
  let shop: TestTenant;
  let rival: TestTenant;
  let events: Namespace;
  let closed: Namespace;
  let streams: Namespace;

  const auditRows = (subject: string) =>
    withTenant(walDb(t), shop.id, (trx) =>
      trx.selectFrom('wal.audit_log').select('id').where('subject', '=', subject).execute(),
    );
  // Stands in for a module's domain change, written in the same transaction as its messages.
  const domainChange = (trx: Transaction<WalTables>, subject: string) =>
    trx
      .insertInto('wal.audit_log')
      .values({
        id: uuidv7(),
        tenant_id: shop.id,
        actor: 'test',
        action: 'order.created',
        subject,
        details: '{}',
      })
      .execute();

  beforeAll(async () => {
    t = await startTestApp();
    shop = await createTestTenant(t, 'outbox-a');
    rival = await createTestTenant(t, 'outbox-b');
    await addNamespace(t, shop.id, 'events', {
      payload_schema: JSON.stringify({ type: 'object', required: ['orderId'] }),
    });
    await addNamespace(t, shop.id, 'closed', { enabled: false });
    await addNamespace(t, shop.id, 'streams', { backend: 'redis-streams' });
    const cache = createNamespaceCache(t.ctx, walDb(t));
    events = (await cache.get(shop.id, 'events'))!;
    closed = (await cache.get(shop.id, 'closed'))!;
    streams = (await cache.get(shop.id, 'streams'))!;
  });
  afterAll(() => t.close());

  it('commits the messages with the caller’s transaction', async () => {
    const receipts = await withTenant(walDb(t), shop.id, async (trx) => {
      await domainChange(trx, 'order-1');
      return writeMessages(trx, shop.id, events, [
        { payload: { orderId: 'order-1' }, messageId: 'order-1-created', key: 'order-1' },
        { payload: { orderId: 'order-1' }, messageId: 'order-1-reminder', lifecycle: { delay: 1000 } },
      ]);
    });
    expect(receipts.map((r) => [r.messageId, r.status, r.replayed])).toEqual([
      ['order-1-created', 'accepted', false],
      ['order-1-reminder', 'scheduled', false],
    ]);
    expect(await auditRows('order-1')).toHaveLength(1);
    expect(await countMessages(t, shop.id, 'events')).toBe(2);
  });

  it('rolls back with the caller’s transaction', async () => {
    const before = await countMessages(t, shop.id, 'events');
    await expect(
      withTenant(walDb(t), shop.id, async (trx) => {
        await domainChange(trx, 'order-2');
        await writeMessages(trx, shop.id, events, [
          { payload: { orderId: 'order-2' }, messageId: 'order-2-created' },
        ]);
        throw new Error('the domain change failed after the message was written');
      }),
    ).rejects.toThrow('domain change failed');
    expect(await auditRows('order-2')).toHaveLength(0);
    expect(await countMessages(t, shop.id, 'events')).toBe(before);
  });

  it('replays the same messageId and body; another body is a 409 that rolls everything back', async () => {
    const replay = await withTenant(walDb(t), shop.id, (trx) =>
      writeMessages(trx, shop.id, events, [
        { payload: { orderId: 'order-1' }, messageId: 'order-1-created', key: 'order-1' },
      ]),
    );
    expect(replay[0]).toMatchObject({ messageId: 'order-1-created', replayed: true });
    const before = await countMessages(t, shop.id, 'events');
    const error = await withTenant(walDb(t), shop.id, (trx) =>
      writeMessages(trx, shop.id, events, [
        { payload: { orderId: 'fresh' }, messageId: 'fresh-1' },
        { payload: { orderId: 'changed' }, messageId: 'order-1-created' },
      ]),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await countMessages(t, shop.id, 'events')).toBe(before);
  });

  it('keeps a message for a stream backend in PostgreSQL, for the relay, with that backend', async () => {
    const receipts = await withTenant(walDb(t), shop.id, (trx) =>
      writeMessages(trx, shop.id, streams, [{ payload: { n: 1 }, messageId: 'for-redis' }]),
    );
    expect(receipts[0]).toMatchObject({ messageId: 'for-redis', backend: 'redis-streams', replayed: false });
    const rows = await withTenant(walDb(t), shop.id, (trx) =>
      trx
        .selectFrom('wal.messages')
        .select(['backend', 'state'])
        .where('message_id', '=', 'for-redis')
        .execute(),
    );
    expect(rows).toEqual([{ backend: 'redis-streams', state: 'pending' }]);
  });

  it('validates like the HTTP API before writing anything', async () => {
    const attempt = (namespace: Namespace, payload: unknown, tenantId = shop.id) =>
      withTenant(walDb(t), tenantId, (trx) => writeMessages(trx, tenantId, namespace, [{ payload }])).catch(
        (e: AppError) => e,
      );
    const schema = (await attempt(events, { nope: 1 })) as AppError;
    expect(schema.code).toBe('PAYLOAD_SCHEMA_MISMATCH');
    expect(schema.extras.errors?.[0]?.pointer).toBe('/messages/0/payload/orderId');
    expect(((await attempt(closed, {})) as AppError).code).toBe('NAMESPACE_DISABLED');
    // A namespace of another tenant is not this tenant's to write.
    expect(((await attempt(events, { orderId: 'x' }, rival.id)) as AppError).code).toBe('NOT_FOUND');
  });
});
