import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../../platform/db/index.ts';
import { type TestApp, testRedisUrl } from '../../platform/testing/index.ts';
import { createRedisStreamsBackend } from '../backends/redis-streams/index.ts';
import { messageKey, nsKeys } from '../backends/redis-streams/keys.ts';
import type { StreamBackend } from '../backends/stream/contract.ts';
import { startRelay } from '../backends/stream/relay.ts';
import { createNamespaceCache } from '../namespaces/index.ts';
import { writeMessages } from '../write/index.ts';
import { addNamespace, walDb } from '../write/write-test-fixtures.ts';
import { backendsInPostgres, proxiedBackend } from './proxied-backend.ts';
import { until } from './receiver.ts';
import type { TcpProxy } from './tcp-proxy.ts';

// The outbox relay appends rows to Redis, Redis runs the script, and the connection drops before
// its answer comes back (the command rejected with a connection error once the reconnects are
// refused). Rows marked as sent before the pass (relay-marks.ts) waited for Redis already; rows
// the pass read without a mark (the backend did not answer the pass's ping: Redis was down, and
// back by the time of the append) were handed to the fallback, postgres, as if Redis had refused
// them: stored and delivered by both. The relay must keep them for Redis (marked), and the next
// pass find them there (replays). Redis is reached through a proxy: cut during the ping, restored
// for the append, whose answer it holds back before cutting the connection again.
const ROWS = 3;

describe.skipIf(!testRedisUrl())('rows the relay sent to Redis whose connection then dropped', () => {
  let t: TestApp;
  let tenant: TestTenant;
  let proxy: TcpProxy;
  let redis: Redis;
  const proxied = proxiedBackend(
    'redis-streams',
    testRedisUrl() ?? 'redis://127.0.0.1:6379',
    'wal-lost-relay',
  );
  beforeAll(() => {
    ({ t, tenant, proxy } = proxied);
    redis = proxied.redis!;
  });

  it('keeps them for Redis, never hands them to the fallback, and stores each once', {
    timeout: 60_000,
  }, async () => {
    const db = walDb(t);
    const prefix = `mt_lost_relay_${process.pid}_${Date.now()}`;
    const name = 'lost-relay';
    const ids = Array.from({ length: ROWS }, (_, i) => `m-${i}`);
    const real = createRedisStreamsBackend(redis, { prefix });
    proxied.opened.push(real);
    await addNamespace(t, tenant.id, name, { backend: 'redis-streams', fallback_backend: 'postgres' });
    // Known to the backend (its registry entry written), so that the append is one script call.
    await real.reopen(tenant.id, name);
    const ns = (await createNamespaceCache(t.ctx, db).get(tenant.id, name))!;
    await withTenant(db, tenant.id, (trx) =>
      writeMessages(
        trx,
        tenant.id,
        ns,
        ids.map((messageId, i) => ({ messageId, payload: { i } })),
      ),
    );
    const { base } = nsKeys(prefix, tenant.id, name);
    const ready = () => until(() => redis.status === 'ready', 'the client connected again');
    // Read on a connection of the test's own, not through the proxy.
    const check = new Redis(testRedisUrl()!);
    const inRedis = async (id: string) => (await check.exists(messageKey(base, id))) === 1;

    let armed = true;
    const backend: StreamBackend = Object.assign(Object.create(real) as StreamBackend, {
      // Redis down for the pass's ping (so its rows are not marked), back for the append.
      async ping() {
        try {
          await real.ping();
        } finally {
          if (armed) {
            await proxy.restore();
            await ready();
            proxy.holdReplies();
          }
        }
      },
      async append(...args: Parameters<StreamBackend['append']>) {
        const appended = real.append(...args);
        appended.catch(() => {});
        if (armed) {
          armed = false;
          // Redis ran the script (its answer held); then the connection and Redis go.
          await until(
            async () => (await Promise.all(ids.map(inRedis))).every(Boolean),
            'the append script run by Redis',
          );
          await proxy.cut();
          proxy.release();
        }
        return appended;
      },
    });

    await proxy.cut();
    await until(() => redis.status !== 'ready', 'the client lost Redis');
    const relay = startRelay({
      ctx: t.ctx,
      db,
      streams: new Map([['redis-streams', backend]]),
      retryMs: 3_600_000,
      backendTimeoutMs: 20_000,
    });
    try {
      await relay.drain();
      expect(armed).toBe(false);
      // Not handed to postgres: the rows wait for Redis, which holds them.
      expect(await backendsInPostgres(db, tenant.id, name)).toEqual(ids.map(() => 'redis-streams'));
      await proxy.restore();
      await ready();
      // The next pass appends them again: replays, then deleted from the outbox.
      await relay.drain();
      expect(await backendsInPostgres(db, tenant.id, name)).toEqual([]);
      const found = await Promise.all(ids.map((id) => real.find(tenant.id, name, id)));
      expect(found.map((f) => f?.state)).toEqual(ids.map(() => 'pending'));
      expect((await real.lag()).messages).toBe(ROWS);
    } finally {
      proxy.release();
      await proxy.restore().catch(() => {});
      await relay.stop();
      check.disconnect();
    }
  });
});
