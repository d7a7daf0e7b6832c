import { randomInt, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { row, testNamespace } from '../wal/backends/redis-streams/test-fixtures.ts';
import { createStreamBackends } from '../wal/backends/stream/create.ts';
import { ConfigError, loadConfig } from './config/index.ts';
import { startTestApp, type TestApp, testRedisUrl } from './testing/index.ts';

describe('MERCATO_REDIS_PREFIX', () => {
  it("defaults to mercato: (the key names Mercato always used) and takes the operator's", () => {
    expect(loadConfig({}).redisPrefix).toBe('mercato:');
    expect(loadConfig({ MERCATO_REDIS_PREFIX: 'shop-eu:' }).redisPrefix).toBe('shop-eu:');
    expect(loadConfig({ MERCATO_REDIS_PREFIX: '' }).redisPrefix).toBe('');
  });

  it('refuses braces, which Redis Cluster would read as the hash tag of every key', () => {
    for (const prefix of ['a{b}:', '{', 'x}']) {
      expect(() => loadConfig({ MERCATO_REDIS_PREFIX: prefix })).toThrow(ConfigError);
    }
    expect(() => loadConfig({ MERCATO_REDIS_PREFIX: '{a}' })).toThrow(
      'MERCATO_REDIS_PREFIX must not contain { or }, got "{a}"',
    );
  });
});

describe.skipIf(!testRedisUrl())('two deployments with their own prefix on one Redis', () => {
  const prefixA = `mercato-test:${process.pid}:${randomUUID().slice(0, 8)}:a:`;
  const prefixB = `mercato-test:${process.pid}:${randomUUID().slice(0, 8)}:b:`;
  let a: TestApp;
  let b: TestApp;
  let redis: Redis;

  beforeAll(async () => {
    const env = { REDIS_URL: testRedisUrl()!, MERCATO_RATE_LIMIT_ANONYMOUS: '2' };
    [a, b] = await Promise.all([
      startTestApp({ ...env, MERCATO_REDIS_PREFIX: prefixA }),
      startTestApp({ ...env, MERCATO_REDIS_PREFIX: prefixB }),
    ]);
    redis = new Redis(testRedisUrl()!);
  });
  afterAll(async () => {
    for (const prefix of [prefixA, prefixB]) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    }
    await redis.quit();
    await Promise.all([a?.close(), b?.close()]);
  });

  const keysOf = async (prefix: string) =>
    (await redis.keys(`${prefix}*`)).map((k) => k.slice(prefix.length));
  const anonymous = (app: FastifyInstance, ip: string) =>
    app.inject({ method: 'POST', url: '/api/v1/auth/validate', remoteAddress: ip, payload: { token: 'x' } });

  it('do not share counters (failed logins and other throttles)', async () => {
    const key = `login:shop:${randomUUID()}@shop.test`;
    for (let i = 0; i < 3; i++) await a.ctx.counters.increment(key, 60);
    expect(await a.ctx.counters.peek(key)).toMatchObject({ count: 3 });
    expect(await b.ctx.counters.peek(key)).toMatchObject({ count: 0 });
    expect(await redis.get(`${prefixA}counter:${key}`)).toBe('3');
    await b.ctx.counters.reset(key);
    expect(await a.ctx.counters.peek(key)).toMatchObject({ count: 3 });
  });

  it('do not share rate limits', async () => {
    const ip = `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
    for (let i = 0; i < 2; i++) expect((await anonymous(a.app, ip)).statusCode).not.toBe(429);
    expect((await anonymous(a.app, ip)).statusCode).toBe(429);
    expect((await anonymous(b.app, ip)).statusCode).not.toBe(429);
    expect((await keysOf(prefixA)).some((k) => k.startsWith('ratelimit:'))).toBe(true);
  });

  it('keep their redis-streams WAL messages apart, each namespace under one hash tag', async () => {
    const backendA = createStreamBackends(a.ctx).get('redis-streams')!;
    const backendB = createStreamBackends(b.ctx).get('redis-streams')!;
    const ns = testNamespace();
    try {
      const [written] = await backendA.append([row(ns, 'msg-1')]);
      expect(written).toMatchObject({ replayed: false });
      expect(await backendA.find(ns.tenantId, ns.name, 'msg-1')).toBeDefined();
      expect(await backendB.find(ns.tenantId, ns.name, 'msg-1')).toBeUndefined();
      const walKeys = (await keysOf(prefixA)).filter((k) => k.startsWith('wal:{'));
      expect(walKeys.length).toBeGreaterThan(0);
      for (const k of walKeys) expect(k.startsWith(`wal:{${ns.tenantId}/${ns.name}}`)).toBe(true);
      expect((await keysOf(prefixB)).filter((k) => k.startsWith('wal:'))).toEqual([]);
    } finally {
      await Promise.all([backendA.close(), backendB.close()]);
    }
  });
});
