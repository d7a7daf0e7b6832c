import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp, testRedisUrl } from '../../platform/testing/index.ts';
import { messageKey, nsKeys } from '../backends/redis-streams/keys.ts';
import { createWal } from '../index.ts';
import { walDb } from '../write/write-test-fixtures.ts';
import { backendsInPostgres } from './proxied-backend.ts';
import { until } from './receiver.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

// A Redis command whose connection drops once it was written to the socket: Redis may have run it
// (here it did: the append script stored the message, its answer lost with the connection). The
// client rejects it with a connection error (MaxRetriesPerRequestError once the reconnects are
// refused), which was an outage: the HTTP write went to the namespace's fallback, and the message
// was stored, and delivered, twice. Stored or not, nobody knows: 503, never the fallback, and the
// writer's retry finds in Redis what it stored. The app reaches Redis through a proxy that
// forwards the append, holds back Redis's answer, then cuts the connection (and refuses new ones).

type Receipt = { messageId: string; backend: string };

describe.skipIf(!testRedisUrl())(
  'an HTTP write whose Redis connection drops once the append was sent',
  () => {
    let proxy: TcpProxy;
    let t: TestApp;
    let tenant: TestTenant;
    let admin: Record<string, string>;
    let base: string;
    let direct: Redis;
    const namespace = 'lost-answer';

    const write = async (messageId: string) => {
      const response = await fetch(`${base}/api/v1/wal/write`, {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/json' },
        body: JSON.stringify({ namespace, messageId, payload: { messageId } }),
      });
      return { status: response.status, headers: response.headers, body: await response.json() };
    };
    /** Whether Redis holds the message (read on a connection of the test's own, not through the proxy). */
    const inRedis = async (messageId: string) =>
      (await direct.exists(messageKey(nsKeys('mercato:wal', tenant.id, namespace).base, messageId))) === 1;

    beforeAll(async () => {
      const target = new URL(testRedisUrl()!);
      proxy = await startTcpProxy(Number(target.port), target.hostname);
      t = await startTestApp(
        { REDIS_URL: `redis://127.0.0.1:${proxy.port}` },
        { modules: async (ctx) => [await createWal(ctx)] },
      );
      tenant = await createTestTenant(t, 'wal-lost-answer');
      admin = { authorization: `Bearer ${(await login(t.app, tenant.slug, tenant.adminEmail)).accessToken}` };
      base = await t.app.listen({ host: '127.0.0.1', port: 0 });
      direct = new Redis(testRedisUrl()!);
      const made = await fetch(`${base}/api/v1/wal/namespaces`, {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/json' },
        body: JSON.stringify({ name: namespace, backend: 'redis-streams', fallbackBackend: 'postgres' }),
      });
      expect(made.status, await made.text()).toBe(201);
    });
    afterAll(async () => {
      proxy?.release();
      await t?.close();
      direct?.disconnect();
      await proxy?.close();
    });

    it('answers 503 with its problem code, never the fallback, and its retry is a replay from Redis', {
      timeout: 60_000,
    }, async () => {
      // Redis up: the write is Redis's (and the namespace known to it).
      const first = await write('before');
      expect(first.status).toBe(202);
      expect((first.body as Receipt).backend).toBe('redis-streams');

      proxy.holdReplies();
      const lost = write('lost');
      // Redis ran the script; its answer is held. Then the connection goes, and Redis with it.
      await until(() => inRedis('lost'), 'the append script run by Redis');
      await proxy.cut();
      proxy.release();
      const answer = await lost;
      const { code, backend } = answer.body as { code?: string; backend?: string };
      expect({ status: answer.status, code, backend }).toEqual({
        status: 503,
        code: 'BACKEND_UNAVAILABLE',
        backend: undefined,
      });
      expect(answer.headers.get('content-type')).toContain('application/problem+json');
      expect(await backendsInPostgres(walDb(t), tenant.id, namespace)).toEqual([]);

      // Redis back: the writer's retry (same messageId) is answered from what Redis stored.
      await proxy.restore();
      await until(async () => (await fetch(`${base}/health/ready`)).status === 200, 'Redis back', 30_000);
      const again = await write('lost');
      expect(again.status).toBe(202);
      expect((again.body as Receipt).backend).toBe('redis-streams');
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(await backendsInPostgres(walDb(t), tenant.id, namespace)).toEqual([]);
    });

    // A connection that falls silent without a word (a NAT or firewall dropped it; Redis is well):
    // the write's command timed out and stayed queued on it, the client still "ready", so every
    // later write went to the same dead connection and answered 503 after the bound, for as long as
    // the operating system kept the connection. Now the timeout replaces the connection.
    it('stores a write in Redis again once one went unanswered on a connection that fell silent', {
      timeout: 60_000,
    }, async () => {
      await until(async () => (await fetch(`${base}/health/ready`)).status === 200, 'Redis up', 30_000);
      proxy.holdOpen();
      try {
        const unanswered = await write('silent-1');
        expect({ status: unanswered.status, code: (unanswered.body as { code?: string }).code }).toEqual({
          status: 503,
          code: 'BACKEND_UNAVAILABLE',
        });
        await until(async () => (await fetch(`${base}/health/ready`)).status === 200, 'Redis back', 30_000);
        const next = await write('silent-2');
        expect({ status: next.status, backend: (next.body as Receipt).backend }).toEqual({
          status: 202,
          backend: 'redis-streams',
        });
      } finally {
        proxy.release();
      }
    });
  },
);
