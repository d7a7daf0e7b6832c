import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, type TestTenant } from '../../../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../../../platform/db/index.ts';
import { startTestApp, type TestApp, testRedisUrl } from '../../../platform/testing/index.ts';
import { createNamespaceCache, type Namespace } from '../../namespaces/index.ts';
import { writeMessages } from '../../write/index.ts';
import { addNamespace, walDb } from '../../write/write-test-fixtures.ts';
import { createRedisStreamsBackend } from '../redis-streams/index.ts';
import type { StreamBackend, StreamBackendName } from './contract.ts';
import { startRelay } from './relay.ts';

// The outbox relay against a real Redis: rows a module wrote in its transaction reach the
// redis-streams backend in order, exactly once, and leave PostgreSQL.
describe.skipIf(!testRedisUrl())('outbox relay to redis-streams', () => {
  let t: TestApp;
  let shop: TestTenant;
  let redis: Redis;
  let dead: Redis;
  let backend: StreamBackend;
  const prefix = `mercato-test:relay:${process.pid}:${Date.now()}`;
  const cache = () => createNamespaceCache(t.ctx, walDb(t));

  const namespace = async (name: string): Promise<Namespace> => (await cache().get(shop.id, name))!;
  const write = (ns: Namespace, messageId: string, payload: unknown, key?: string) =>
    withTenant(walDb(t), shop.id, (trx) =>
      writeMessages(trx, shop.id, ns, [{ payload, messageId, ...(key ? { key } : {}) }]),
    );
  const waiting = (name: string) =>
    withTenant(walDb(t), shop.id, (trx) =>
      trx
        .selectFrom('wal.messages')
        .select(['message_id', 'backend', 'state', 'last_error'])
        .where('namespace', '=', name)
        .orderBy('id')
        .execute(),
    );
  const relayTo = (streams: Map<StreamBackendName, StreamBackend>) =>
    startRelay({ ctx: t.ctx, db: walDb(t), streams, retryMs: 60_000 });

  beforeAll(async () => {
    t = await startTestApp();
    shop = await createTestTenant(t, 'relay');
    redis = new Redis(testRedisUrl()!);
    await redis.ping();
    // a client of a port nothing listens on: the backend is down
    dead = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    dead.on('error', () => {});
    backend = createRedisStreamsBackend(redis, { prefix });
    await addNamespace(t, shop.id, 'orders', { backend: 'redis-streams' });
    await addNamespace(t, shop.id, 'falls-back', { backend: 'redis-streams', fallback_backend: 'postgres' });
    await addNamespace(t, shop.id, 'stuck', { backend: 'redis-streams' });
  });
  afterAll(async () => {
    await backend?.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis?.disconnect();
    dead?.disconnect();
    await t?.close();
  });

  it('appends committed rows to the backend in order and deletes them from PostgreSQL', async () => {
    const orders = await namespace('orders');
    for (let i = 0; i < 20; i++) await write(orders, `o-${i}`, { seq: i }, 'cart-1');
    expect(await waiting('orders')).toHaveLength(20);
    const relay = relayTo(new Map([['redis-streams', backend]]));
    try {
      await relay.drain();
      expect(await waiting('orders')).toEqual([]);
      const found = await Promise.all(
        Array.from({ length: 20 }, (_, i) => backend.find(shop.id, 'orders', `o-${i}`)),
      );
      expect(found.map((f) => f?.state)).toEqual(Array(20).fill('pending'));
      // in the order they were written: their internal ids ascend
      const ids = found.map((f) => f!.message.id);
      expect([...ids].sort()).toEqual(ids);
    } finally {
      await relay.stop();
    }
  });

  it('appends a row again after a crash before its delete, without a second message', async () => {
    const orders = await namespace('orders');
    const [receipt] = await write(orders, 'twice', { n: 1 });
    const rows = await withTenant(walDb(t), shop.id, (trx) =>
      trx.selectFrom('wal.messages').selectAll().where('message_id', '=', 'twice').execute(),
    );
    // the relay of a process that died appended it but never committed the delete
    const row = rows[0]!;
    await backend.append([
      {
        ...row,
        payload: JSON.stringify(row.payload),
        headers: JSON.stringify(row.headers),
        due_at: new Date(row.due_at),
        created_at: new Date(row.created_at),
      },
    ]);
    const relay = relayTo(new Map([['redis-streams', backend]]));
    try {
      await relay.drain();
      expect(await waiting('orders')).toEqual([]);
      const found = await backend.find(shop.id, 'orders', 'twice');
      expect(found?.message.id).toBe(row.id);
      expect(receipt?.messageId).toBe('twice');
    } finally {
      await relay.stop();
    }
  });

  it('hands the rows to postgres when the backend is down and the namespace falls back to it', async () => {
    await write(await namespace('falls-back'), 'fb-1', { n: 1 });
    const relay = relayTo(new Map([['redis-streams', createRedisStreamsBackend(dead, { prefix })]]));
    try {
      await relay.drain();
      expect(await waiting('falls-back')).toMatchObject([{ message_id: 'fb-1', backend: 'postgres' }]);
    } finally {
      await relay.stop();
    }
  });

  it('keeps the rows while the backend is down and there is no fallback, and moves them once it is back', async () => {
    await write(await namespace('stuck'), 'st-1', { n: 1 });
    const down = relayTo(new Map([['redis-streams', createRedisStreamsBackend(dead, { prefix })]]));
    try {
      await down.drain();
      expect(await waiting('stuck')).toMatchObject([{ message_id: 'st-1', backend: 'redis-streams' }]);
    } finally {
      await down.stop();
    }
    const up = relayTo(new Map([['redis-streams', backend]]));
    try {
      await up.drain();
      expect(await waiting('stuck')).toEqual([]);
      expect((await backend.find(shop.id, 'stuck', 'st-1'))?.state).toBe('pending');
    } finally {
      await up.stop();
    }
  });

  it('turns a messageId the backend holds with another body into a dead letter', async () => {
    const orders = await namespace('orders');
    await write(orders, 'clash', { v: 1 });
    const relay = relayTo(new Map([['redis-streams', backend]]));
    try {
      await relay.drain();
      await write(orders, 'clash', { v: 2 }); // gone from PostgreSQL, so the outbox takes it again
      await relay.drain();
      expect(await waiting('orders')).toMatchObject([
        { message_id: 'clash', state: 'dead', last_error: expect.stringMatching(/different body/) },
      ]);
    } finally {
      await relay.stop();
    }
  });
});
