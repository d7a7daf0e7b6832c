import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post } from '../../identity/auth/auth-test-fixtures.ts';
import { testRedisUrl } from '../../platform/testing/index.ts';
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
