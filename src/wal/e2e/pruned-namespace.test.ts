import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post } from '../../identity/auth/auth-test-fixtures.ts';
import { withSystem, withTenant } from '../../platform/db/index.ts';
import { testNatsUrl, testRedisUrl } from '../../platform/testing/index.ts';
import { namespaceNames } from '../backends/nats-jetstream/names.ts';
import { createGroupCommitter } from '../backends/postgres/group-commit.ts';
import { nsKeys } from '../backends/redis-streams/keys.ts';
import type { Namespace } from '../namespaces/index.ts';
import { createAppender } from '../write/append.ts';
import { writeMessages } from '../write/index.ts';
import { toRows } from '../write/prepare.ts';
import { newSecret, until } from './receiver.ts';
import { type RedisWalApp, startRedisWalApp } from './redis-app-fixtures.ts';

// A namespace whose old backend was pruned (backends/stream/prune.ts): what a writer that still
// reads it as it was meets, what GET finds, and what its deletion leaves on that backend.
const backends = [
  { backend: 'redis-streams', env: {} },
  { backend: 'nats-jetstream', env: testNatsUrl() ? { NATS_URL: testNatsUrl()! } : undefined },
] as const;

for (const { backend, env } of backends) {
  describe.skipIf(!testRedisUrl() || !env)(`WAL namespace pruned from ${backend}`, () => {
    let w: RedisWalApp;
    let stale: Namespace;
    let seq = 0;
    beforeAll(async () => {
      w = await startRedisWalApp(`wal-prunedns-${backend.slice(0, 4)}`, env ?? {}, { drainPruneMs: 100 });
    });
    afterAll(() => w?.close());

    const request = (method: 'GET' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
      w.t.app.inject({ method, url: `/api/v1/wal${url}`, headers: w.admin, ...(payload ? { payload } : {}) });
    const draining = async (name: string) =>
      (await request('GET', `/namespaces/${name}`)).json().drainingBackends as string[];
    const setTenantStatus = (status: 'active' | 'suspended') =>
      withSystem(w.wal.deps.db, (trx) =>
        trx
          .withSchema('identity')
          .updateTable('tenants' as never)
          .set({ status } as never)
          .where('id' as never, '=', w.tenant.id as never)
          .execute(),
      );

    /** A namespace made on the backend, one message delivered there, moved to postgres and pruned. */
    const prunedNamespace = async () => {
      const name = `pruned-${++seq}`;
      const hook = { name: 'hook', type: 'http', url: w.receiver.url, secret: newSecret(), timeoutMs: 2000 };
      const made = await post(w.t.app, '/api/v1/wal/namespaces', { name, backend, targets: [hook] }, w.admin);
      expect(made.statusCode, made.body).toBe(201);
      stale = (await w.wal.deps.namespaces.get(w.tenant.id, name))!;
      const written = await post(w.t.app, '/api/v1/wal/write', { namespace: name, payload: {} }, w.admin);
      expect(written.json().backend).toBe(backend);
      const { messageId } = written.json<{ messageId: string }>();
      await until(() => w.receiver.ids().has(messageId), 'the message on the old backend delivered');
      expect((await request('PUT', `/namespaces/${name}`, { backend: 'postgres' })).statusCode).toBe(200);
      await until(async () => (await draining(name)).length === 0, 'the old backend pruned', 20_000);
      return { name, messageId };
    };
    /** A write with the namespace as read before the move (HTTP write path, another process's cache). */
    const staleWrite = async (messageId: string) => {
      const { db, namespaces, streams } = w.wal.deps;
      const committer = createGroupCommitter(db);
      try {
        const append = createAppender(committer, streams, undefined, { db, namespaces });
        return await append(stale, toRows(w.tenant.id, stale, backend, [{ payload: {}, messageId }]));
      } finally {
        await committer.close();
      }
    };

    it('refuses a refused write read again as a first write would: disabled, then suspended', {
      timeout: 60_000,
    }, async () => {
      const { name } = await prunedNamespace();
      expect((await request('PUT', `/namespaces/${name}`, { enabled: false })).statusCode).toBe(200);
      await expect(staleWrite('while-disabled')).rejects.toMatchObject({ code: 'NAMESPACE_DISABLED' });

      expect((await request('PUT', `/namespaces/${name}`, { enabled: true })).statusCode).toBe(200);
      await setTenantStatus('suspended');
      try {
        await expect(staleWrite('while-suspended')).rejects.toMatchObject({ code: 'TENANT_SUSPENDED' });
      } finally {
        await setTenantStatus('active');
      }
      const [written] = await staleWrite('once-active');
      expect(written?.message.backend).toBe('postgres');
      const none = await withSystem(w.wal.deps.db, (trx) =>
        trx
          .selectFrom('wal.messages')
          .select('message_id')
          .where('namespace', '=', name)
          .where('message_id', 'in', ['while-disabled', 'while-suspended'])
          .execute(),
      );
      expect(none).toEqual([]);
    });

    it('finds by id what was moved off the pruned backend; one delivered there is a 404', {
      timeout: 60_000,
    }, async () => {
      const { name, messageId } = await prunedNamespace();
      expect((await request('GET', `/messages/${messageId}?namespace=${name}`)).statusCode).toBe(404);

      await staleWrite('rewritten');
      await withTenant(w.wal.deps.db, w.tenant.id, (trx) =>
        writeMessages(trx, w.tenant.id, stale, [{ payload: {}, messageId: 'relayed' }]),
      );
      for (const id of ['rewritten', 'relayed']) {
        const found = await until(async () => {
          const response = await request('GET', `/messages/${id}?namespace=${name}`);
          return response.statusCode === 200 && response.json().state === 'delivered' ? response : undefined;
        }, `${id} found delivered`);
        expect(found.json()).toMatchObject({ backend: 'postgres', namespace: name });
      }
    });

    it('removes what the pruned backend kept of a namespace that is deleted: one made again under its name starts afresh', {
      timeout: 60_000,
    }, async () => {
      const { name, messageId } = await prunedNamespace();
      const left = async () => {
        if (backend === 'redis-streams')
          return (await w.redis.exists(nsKeys('mercato:wal', w.tenant.id, name).retired)) === 1;
        const nc = await connect({ servers: testNatsUrl()! });
        try {
          const jsm = await jetstreamManager(nc);
          const stream = namespaceNames('mercato_wal', w.tenant.id, name).stream;
          return await jsm.streams.info(stream).then(
            () => true,
            (err: unknown) => {
              if (/not found/i.test(String(err))) return false;
              throw err;
            },
          );
        } finally {
          await nc.close();
        }
      };
      expect(await left()).toBe(true);
      expect((await request('DELETE', `/namespaces/${name}`)).statusCode).toBe(204);
      expect(await left()).toBe(false);

      // Made again on that backend: the first namespace's messageId is a new message there, not
      // a replay of the one delivered before the prune (whose record would otherwise stay).
      const hook = { name: 'hook', type: 'http', url: w.receiver.url, secret: newSecret(), timeoutMs: 2000 };
      const made = await post(w.t.app, '/api/v1/wal/namespaces', { name, backend, targets: [hook] }, w.admin);
      expect(made.statusCode, made.body).toBe(201);
      const again = await post(
        w.t.app,
        '/api/v1/wal/write',
        { namespace: name, messageId, payload: {} },
        w.admin,
      );
      expect(again.statusCode, again.body).toBe(202);
      expect(again.headers['idempotent-replayed']).toBeUndefined();
      expect(again.json()).toMatchObject({ backend });
    });
  });
}
