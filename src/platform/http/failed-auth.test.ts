import { randomInt } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, login } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp, testRedisUrl } from '../testing/index.ts';

/** An IP of its own per test, so counters (in memory or in a shared Redis) never mix. */
const freshIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;

const call = (app: FastifyInstance, ip: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'GET', url: '/api/v1/users/profile', remoteAddress: ip, headers });

const BOGUS: [string, Record<string, string>][] = [
  ['a bogus access token', { authorization: 'Bearer not.a.jwt' }],
  ['a bogus API key', { 'x-api-key': 'mk_guessed-key-000000000000000000000000000000' }],
  ['a malformed Authorization header', { authorization: 'Basic dXNlcjpwYXNz' }],
];

async function expectLimitedAfter(app: FastifyInstance, limit: number, headers: Record<string, string>) {
  const ip = freshIp();
  for (let i = 0; i < limit; i++) {
    const refused = await call(app, ip, headers);
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({ code: 'INVALID_TOKEN' });
  }
  const limited = await call(app, ip, headers);
  expect(limited.statusCode).toBe(429);
  expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(limited.json()).toMatchObject({ code: 'RATE_LIMITED' });
  expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  return ip;
}

describe('failed authentications count against the per-IP anonymous limit', () => {
  let t: TestApp;
  let token: string;
  beforeAll(async () => {
    t = await startTestApp({ MERCATO_RATE_LIMIT_ANONYMOUS: '3' });
    const shop = await createTestTenant(t, 'failed-auth');
    token = (await login(t.app, shop.slug, shop.adminEmail)).accessToken;
  });
  afterAll(() => t?.close());

  it.each(BOGUS)(
    'answers 429 RATE_LIMITED with Retry-After past the limit for %s',
    async (_name, headers) => {
      await expectLimitedAfter(t.app, 3, headers);
    },
  );

  it('shares the budget with anonymous requests of the same IP, and leaves other IPs and users alone', async () => {
    const ip = await expectLimitedAfter(t.app, 3, BOGUS[0]![1]);
    const anonymous = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/validate',
      remoteAddress: ip,
      payload: { token: 'nothing' },
    });
    expect(anonymous.statusCode).toBe(429);
    expect((await call(t.app, freshIp(), BOGUS[0]![1])).statusCode).toBe(401);
    expect((await call(t.app, ip, { authorization: `Bearer ${token}` })).statusCode).toBe(200);
  });

  it('counts bogus credentials from every address of one IPv6 /64 against one budget', async () => {
    const net = `2001:db8:${randomInt(65_536).toString(16)}:${randomInt(65_536).toString(16)}:`;
    for (let i = 1; i <= 3; i++)
      expect((await call(t.app, `${net}:${i}`, BOGUS[1]![1])).statusCode).toBe(401);
    const limited = await call(t.app, `${net}ffff:ffff:ffff:ffff`, BOGUS[1]![1]);
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('counts requests refused by a route guard before the guard answers (no credential on a protected route)', async () => {
    const ip = freshIp();
    const refusedCalls = [
      { method: 'POST' as const, url: '/api/v1/api-keys', payload: { name: 'k', permissions: ['*'] } },
      {
        method: 'PUT' as const,
        url: '/api/v1/users/password',
        payload: { currentPassword: 'x', newPassword: 'y' },
      },
      { method: 'POST' as const, url: '/api/v1/tenants', payload: {} },
    ];
    for (const request of refusedCalls) {
      const refused = await t.app.inject({ ...request, remoteAddress: ip });
      expect(refused.statusCode, request.url).toBe(401);
    }
    const limited = await t.app.inject({ ...refusedCalls[0]!, remoteAddress: ip });
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'RATE_LIMITED' });
  });
});

describe.skipIf(!testRedisUrl())('failed authentications counted in Redis', () => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    const env = { REDIS_URL: testRedisUrl()!, MERCATO_RATE_LIMIT_ANONYMOUS: '4' };
    [a, b] = await Promise.all([startTestApp(env), startTestApp(env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('limits bogus credentials from one IP across two app instances', async () => {
    const ip = freshIp();
    const headers = BOGUS[1]![1];
    for (const t of [a, b, a, b]) expect((await call(t.app, ip, headers)).statusCode).toBe(401);
    const limited = await call(a.app, ip, headers);
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'RATE_LIMITED' });
    expect(limited.headers['retry-after']).toBeDefined();
  });
});
