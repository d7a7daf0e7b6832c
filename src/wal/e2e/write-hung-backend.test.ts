import type { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withSystem } from '../../platform/db/index.ts';
import { type TestApp, testRedisUrl } from '../../platform/testing/index.ts';
import { createGroupCommitter } from '../backends/postgres/group-commit.ts';
import { createRedisStreamsBackend } from '../backends/redis-streams/index.ts';
import { createNamespaceCache } from '../namespaces/index.ts';
import { createAppender } from '../write/append.ts';
import { toRows } from '../write/prepare.ts';
import { addNamespace, walDb } from '../write/write-test-fixtures.ts';
import { proxiedBackend } from './proxied-backend.ts';
import { until } from './receiver.ts';
import type { TcpProxy } from './tcp-proxy.ts';

// An HTTP write to a Redis that takes the connection and never answers (a server stopped or
// overloaded, a network dropping packets): a Redis command has no timeout of its own (the
// platform's client waits, and reconnects, for ever), so the write waited as long as Redis hung,
// the caller's request and its rows held meanwhile. It is bounded: past the bound, 503
// BACKEND_UNAVAILABLE with Retry-After, never the fallback (the script may have run: both would
// deliver the message), and the writer's retry with the same messageIds finds what Redis stored.
// Redis is reached through a proxy that stops forwarding.
const HOLD_MS = 6_000;
const BOUND_MS = 300;
const ROWS = 3;

describe.skipIf(!testRedisUrl())('an HTTP write while Redis does not answer', () => {
  let t: TestApp;
  let tenant: TestTenant;
  let proxy: TcpProxy;
  let redis: Redis;

  const proxied = proxiedBackend(
    'redis-streams',
    testRedisUrl() ?? 'redis://127.0.0.1:6379',
    'wal-write-hung',
  );
  beforeAll(() => {
    ({ t, tenant, proxy } = proxied);
    redis = proxied.redis!;
  });

  it('answers 503 within its bound instead of waiting for Redis or writing to the fallback', {
    timeout: 60_000,
  }, async () => {
    const db = walDb(t);
    const backend = createRedisStreamsBackend(redis, {
      prefix: `mt_write_hung_${process.pid}_${Date.now()}`,
    });
    await backend.ping();
    const name = 'write-hung';
    await addNamespace(t, tenant.id, name, { backend: 'redis-streams', fallback_backend: 'postgres' });
    const namespaces = createNamespaceCache(t.ctx, db);
    const ns = (await namespaces.get(tenant.id, name))!;
    const committer = createGroupCommitter(db);
    const append = createAppender(
      committer,
      new Map([['redis-streams', backend]]),
      undefined,
      { db, namespaces },
      { backendTimeoutMs: BOUND_MS },
    );
    const ids = Array.from({ length: ROWS }, (_, i) => `m-${i}`);
    const rows = () =>
      toRows(
        tenant.id,
        ns,
        'redis-streams',
        ids.map((messageId, i) => ({ messageId, payload: { i } })),
      );
    const inPostgres = () =>
      withSystem(db, (trx) =>
        trx
          .selectFrom('wal.messages')
          .select('message_id')
          .where('tenant_id', '=', tenant.id)
          .where('namespace', '=', name)
          .execute(),
      );
    proxy.hold();
    const giveBack = setTimeout(() => proxy.release(), HOLD_MS);
    try {
      const sent = performance.now();
      const outcome = await append(ns, rows()).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      const waitedMs = performance.now() - sent;
      expect(outcome).toMatchObject({ error: { code: 'BACKEND_UNAVAILABLE' } });
      expect(waitedMs).toBeLessThan(BOUND_MS + 1_000);
      expect(await inPostgres()).toEqual([]);
      // Redis answers again: the script it was sent ran; the retry finds each message there.
      clearTimeout(giveBack);
      proxy.release();
      await until(
        async () => (await backend.find(tenant.id, name, ids[ROWS - 1]!))?.state === 'pending',
        'the held write stored once Redis answers',
      );
      const again = await append(ns, rows());
      expect(again.map((o) => [o.replayed, o.message.backend])).toEqual(
        ids.map(() => [true, 'redis-streams']),
      );
      expect((await backend.lag()).messages).toBe(ROWS);
      expect(await inPostgres()).toEqual([]);
    } finally {
      clearTimeout(giveBack);
      proxy.release();
      await committer.close();
      await backend.close();
    }
  });
});
