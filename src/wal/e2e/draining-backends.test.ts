import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post } from '../../identity/auth/auth-test-fixtures.ts';
import { withSystem, withTenant } from '../../platform/db/index.ts';
import { testNatsUrl, testRedisUrl } from '../../platform/testing/index.ts';
import { createGroupCommitter } from '../backends/postgres/group-commit.ts';
import { createAppender } from '../write/append.ts';
import { writeMessages } from '../write/index.ts';
import { toRows } from '../write/prepare.ts';
import { newSecret, until } from './receiver.ts';
import { namespaceRedisKeys, type RedisWalApp, startRedisWalApp } from './redis-app-fixtures.ts';

type Receipt = { messageId: string; backend: string };

// A namespace moved off Redis while Redis still holds a delayed message of it.
describe.skipIf(!testRedisUrl())('WAL namespace moved to another backend', () => {
  let w: RedisWalApp;

  const write = async (payload: unknown, delay?: number) => {
    const response = await post(
      w.t.app,
      '/api/v1/wal/write',
      { namespace: 'moving', payload, ...(delay ? { lifecycle: { delay } } : {}) },
      w.admin,
    );
    expect(response.statusCode, response.body).toBe(202);
    return response.json<Receipt>();
  };
  const request = (method: 'GET' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
    w.t.app.inject({ method, url: `/api/v1/wal${url}`, headers: w.admin, ...(payload ? { payload } : {}) });
  const redisKeys = () => namespaceRedisKeys(w.redis, w.tenant.id, 'moving');

  beforeAll(async () => {
    w = await startRedisWalApp('wal-moving');
  });
  afterAll(() => w?.close());

  it('delivers what Redis held after the namespace moved to postgres, finds it there, and deletes it there', {
    timeout: 60_000,
  }, async () => {
    const made = await post(
      w.t.app,
      '/api/v1/wal/namespaces',
      {
        name: 'moving',
        backend: 'redis-streams',
        targets: [{ name: 'hook', type: 'http', url: w.receiver.url, secret: newSecret(), timeoutMs: 2000 }],
      },
      w.admin,
    );
    expect(made.statusCode, made.body).toBe(201);
    const left = await write({ n: 1 }, 1500);
    expect(left.backend).toBe('redis-streams');

    const moved = await request('PUT', '/namespaces/moving', { backend: 'postgres' });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(moved.json()).toMatchObject({ backend: 'postgres', drainingBackends: ['redis-streams'] });
    const after = await write({ n: 2 });
    expect(after.backend).toBe('postgres');

    // Both delivered: the delayed one by Redis's consumer, which still serves the namespace.
    await until(() => w.receiver.ids().has(after.messageId), 'the message written after the move delivered');
    await until(() => w.receiver.ids().has(left.messageId), 'the message Redis held delivered', 20_000);
    const found = await until(async () => {
      const response = await request(
        'GET',
        `/messages/${encodeURIComponent(left.messageId)}?namespace=moving`,
      );
      return response.statusCode === 200 && response.json().state === 'delivered' ? response : undefined;
    }, 'the message Redis held shown delivered');
    expect(found.json()).toMatchObject({ backend: 'redis-streams' });

    expect((await redisKeys()).length).toBeGreaterThan(0);
    expect((await request('DELETE', '/namespaces/moving')).statusCode).toBe(204);
    expect(await redisKeys()).toEqual([]);
  });
});

// Once the backend a namespace moved off holds nothing more of it, it leaves drainingBackends, and
// no write lost: not one that landed there just after the move, nor one made after the prune by a
// writer that still reads the namespace as it was (a process's cache, an outbox transaction).
const backends = [
  { backend: 'redis-streams', env: {} },
  // NATS on top of Redis, when the test run has it.
  { backend: 'nats-jetstream', env: testNatsUrl() ? { NATS_URL: testNatsUrl()! } : undefined },
] as const;

for (const { backend, env } of backends) {
  describe.skipIf(!testRedisUrl() || !env)(`WAL namespace moved off ${backend}, then pruned`, () => {
    let w: RedisWalApp;
    const name = 'pruned';

    const request = (method: 'GET' | 'PUT', url: string, payload?: unknown) =>
      w.t.app.inject({ method, url: `/api/v1/wal${url}`, headers: w.admin, ...(payload ? { payload } : {}) });
    const write = async (payload: unknown, delay?: number) => {
      const response = await post(
        w.t.app,
        '/api/v1/wal/write',
        { namespace: name, payload, ...(delay ? { lifecycle: { delay } } : {}) },
        w.admin,
      );
      expect(response.statusCode, response.body).toBe(202);
      return response.json<Receipt>();
    };
    const draining = async () =>
      (await request('GET', `/namespaces/${name}`)).json().drainingBackends as string[];
    const delivered = (messageId: string, what: string) =>
      until(() => w.receiver.ids().has(messageId), `${what} delivered`, 20_000);

    beforeAll(async () => {
      w = await startRedisWalApp(`wal-pruned-${backend.slice(0, 4)}`, env ?? {}, { drainPruneMs: 100 });
    });
    afterAll(() => w?.close());

    it('leaves drainingBackends once what it held is delivered, losing no write that comes after', {
      timeout: 60_000,
    }, async () => {
      const made = await post(
        w.t.app,
        '/api/v1/wal/namespaces',
        {
          name,
          backend,
          targets: [
            { name: 'hook', type: 'http', url: w.receiver.url, secret: newSecret(), timeoutMs: 2000 },
          ],
        },
        w.admin,
      );
      expect(made.statusCode, made.body).toBe(201);
      const tenantId = w.tenant.id;
      const { db, namespaces, streams } = w.wal.deps;
      // The namespace as a process still on the old config reads it.
      const stale = (await namespaces.get(tenantId, name))!;
      expect(stale.backend).toBe(backend);
      const held = await write({ n: 'held' }, 1500);
      expect(held.backend).toBe(backend);

      expect((await request('PUT', `/namespaces/${name}`, { backend: 'postgres' })).statusCode).toBe(200);
      expect(await draining()).toEqual([backend]);
      // A write of that process landing on the old backend just after the move: held there too.
      const [late] = await streams
        .get(backend)!
        .append(
          toRows(tenantId, stale, backend, [
            { payload: { n: 'late' }, messageId: 'late', lifecycle: { delay: 1500 } },
          ]),
        );
      expect(late?.message.backend).toBe(backend);
      // Not pruned while it holds them.
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(await draining()).toEqual([backend]);

      await delivered(held.messageId, 'the message the old backend held');
      await delivered('late', 'the write that landed there after the move');
      await until(async () => (await draining()).length === 0, 'the old backend pruned', 20_000);

      // A write with the namespace read before the move (HTTP write path): refused by the old
      // backend, it reads the namespace again and goes to postgres.
      const committer = createGroupCommitter(db);
      try {
        const append = createAppender(committer, streams, undefined, { db, namespaces });
        const [after] = await append(
          stale,
          toRows(tenantId, stale, backend, [{ payload: { n: 'after' }, messageId: 'after' }]),
        );
        expect(after?.message.backend).toBe('postgres');
      } finally {
        await committer.close();
      }
      await delivered('after', 'the stale write after the prune');
      // An outbox row written for the old backend (a transaction that read the namespace before
      // the move): the relay hands it to postgres.
      await withTenant(db, tenantId, (trx) =>
        writeMessages(trx, tenantId, stale, [{ payload: { n: 'outbox' }, messageId: 'outbox' }]),
      );
      await delivered('outbox', 'the stale outbox row');
      expect(await draining()).toEqual([]);

      // Moved back: the backend takes its writes again.
      expect((await request('PUT', `/namespaces/${name}`, { backend })).statusCode).toBe(200);
      const back = await until(async () => {
        const receipt = await write({ n: 'back' });
        return receipt.backend === backend ? receipt : undefined;
      }, 'a write going to the backend again');
      await delivered(back.messageId, 'the write after moving back');
      // Every message once in a delivery, none missing.
      for (const id of [held.messageId, 'late', 'after', 'outbox', back.messageId])
        expect(w.receiver.ids().has(id)).toBe(true);
    });

    it('takes a draining backend off only through the prune: no update adds one', async () => {
      const { db } = w.wal.deps;
      await withSystem(db, (trx) =>
        sql`update wal.namespaces set draining_backends = '{nats-jetstream,redis-streams}'
            where tenant_id = ${w.tenant.id} and name = ${name}`.execute(trx),
      );
      expect(await draining()).toEqual([]);
    });
  });
}
