import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login, post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp, testRedisUrl } from '../../platform/testing/index.ts';
import { createWal } from '../index.ts';
import { newSecret, type Receiver, startReceiver, until } from './receiver.ts';
import { namespaceRedisKeys } from './redis-app-fixtures.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

type Receipt = { messageId: string; backend: string };

// Redis reached through a proxy the test can cut: a real outage of the redis-streams backend.
describe.skipIf(!testRedisUrl())('WAL backend outage and fallback', () => {
  let proxy: TcpProxy;
  let t: TestApp;
  let tenant: TestTenant;
  let admin: Record<string, string>;
  let receiver: Receiver;

  const write = (namespace: string, payload: unknown) =>
    post(t.app, '/api/v1/wal/write', { namespace, payload }, admin);

  beforeAll(async () => {
    const redis = new URL(testRedisUrl()!);
    proxy = await startTcpProxy(Number(redis.port || 6379), redis.hostname);
    t = await startTestApp(
      { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1' },
      { modules: async (ctx) => [await createWal(ctx)] },
    );
    tenant = await createTestTenant(t, 'wal-fallback');
    admin = { authorization: `Bearer ${(await login(t.app, tenant.slug, tenant.adminEmail)).accessToken}` };
    receiver = await startReceiver();
    for (const [name, fallbackBackend] of [
      ['with-fallback', 'postgres'],
      ['without-fallback', undefined],
    ] as const) {
      const made = await post(
        t.app,
        '/api/v1/wal/namespaces',
        {
          name,
          backend: 'redis-streams',
          ...(fallbackBackend ? { fallbackBackend } : {}),
          targets: [{ name: 'hook', type: 'http', url: receiver.url, secret: newSecret(), timeoutMs: 2000 }],
        },
        admin,
      );
      expect(made.statusCode, made.body).toBe(201);
    }
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    await receiver?.close();
  });

  it('writes to redis-streams while Redis is up, to postgres while it is down, and delivers both', async () => {
    const before = await write('with-fallback', { n: 1 });
    expect(before.statusCode, before.body).toBe(202);
    expect(before.json<Receipt>().backend).toBe('redis-streams');
    const first = before.json<Receipt>().messageId;
    await until(() => receiver.ids().has(first), 'the message written to Redis delivered');

    await proxy.cut();
    const during = await until(async () => {
      const response = await write('with-fallback', { n: 2 });
      return response.statusCode === 202 && response.json<Receipt>().backend === 'postgres'
        ? response
        : undefined;
    }, 'a write answered by the fallback');
    const second = during.json<Receipt>().messageId;
    await until(() => receiver.ids().has(second), 'the message written to the fallback delivered');

    // The message written to Redis cannot be read while Redis is away: 503, not a false 404.
    const unreadable = await t.app.inject({
      url: `/api/v1/wal/messages/${encodeURIComponent(first)}?namespace=with-fallback`,
      headers: admin,
    });
    expect(unreadable.statusCode, unreadable.body).toBe(503);
    expect(unreadable.json()).toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
    expect(unreadable.headers['retry-after']).toBe('5');

    const ready = await t.app.inject({ url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json<{ down: string[] }>().down).toContain('wal:redis-streams');
    await proxy.restore();
  });

  it('answers 503 BACKEND_UNAVAILABLE with Retry-After when the backend is down and there is no fallback', {
    timeout: 90_000,
  }, async () => {
    await proxy.cut();
    try {
      const refused = await until(async () => {
        const response = await write('without-fallback', { n: 1 });
        return response.statusCode === 503 ? response : undefined;
      }, 'a 503');
      expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(refused.headers['retry-after']).toBe('5');
      expect(refused.json()).toMatchObject({ code: 'BACKEND_UNAVAILABLE', status: 503 });
    } finally {
      await proxy.restore();
    }
    // Redis is back: the same write is taken and delivered
    const after = await until(
      async () => {
        const response = await write('without-fallback', { n: 2 });
        return response.statusCode === 202 ? response : undefined;
      },
      'Redis back',
      30_000,
    );
    expect(after.json<Receipt>().backend).toBe('redis-streams');
    const id = after.json<Receipt>().messageId;
    await until(() => receiver.ids().has(id), 'delivered after the outage', 30_000);
  });

  it('deletes a namespace with its Redis keys, and refuses (503, nothing deleted) while Redis is down', {
    timeout: 90_000,
  }, async () => {
    const made = await post(
      t.app,
      '/api/v1/wal/namespaces',
      { name: 'short-lived', backend: 'redis-streams' },
      admin,
    );
    expect(made.statusCode, made.body).toBe(201);
    for (let n = 0; n < 3; n++) expect((await write('short-lived', { n })).statusCode).toBe(202);
    const redis = new Redis(testRedisUrl()!);
    const keys = () => namespaceRedisKeys(redis, tenant.id, 'short-lived');
    try {
      expect((await keys()).length).toBeGreaterThan(0);
      const remove = () =>
        t.app.inject({ method: 'DELETE', url: '/api/v1/wal/namespaces/short-lived', headers: admin });
      await proxy.cut();
      try {
        const refused = await until(async () => {
          const response = await remove();
          return response.statusCode === 503 ? response : undefined;
        }, 'a 503');
        expect(refused.json()).toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
        expect(refused.headers['retry-after']).toBe('5');
      } finally {
        await proxy.restore();
      }
      const listed = await t.app.inject({ url: '/api/v1/wal/namespaces/short-lived', headers: admin });
      expect(listed.statusCode).toBe(200);
      const removed = await until(
        async () => {
          const response = await remove();
          return response.statusCode === 204 ? response : undefined;
        },
        'Redis back',
        30_000,
      );
      expect(removed.statusCode).toBe(204);
      expect(await keys()).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});
