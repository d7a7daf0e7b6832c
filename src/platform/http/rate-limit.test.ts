import { randomInt } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '../../identity/tenants/index.ts';
import { startTestApp, type TestApp, testRedisUrl } from '../testing/index.ts';

const PASSWORD = 'correct horse battery staple';

/** An IP of its own per test, so counters (in memory or in a shared Redis) never mix between tests or runs. */
const freshIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
/** An IPv6 /64 of its own per test (documentation range), as `2001:db8:x:y:`: append an interface identifier. */
const fresh64 = () => `2001:db8:${randomInt(65_536).toString(16)}:${randomInt(65_536).toString(16)}:`;

/** A cheap public route: token introspection answers 200 { active: false } for any string. */
const anonymousCall = (app: FastifyInstance, ip: string) =>
  app.inject({
    method: 'POST',
    url: '/api/v1/auth/validate',
    remoteAddress: ip,
    payload: { token: 'nothing' },
  });

describe('anonymous rate limit per IP', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ MERCATO_RATE_LIMIT_ANONYMOUS: '3' });
  });
  afterAll(() => t?.close());

  it('counts down in RateLimit headers, then answers 429 with Retry-After as a problem', async () => {
    const ip = freshIp();
    for (const remaining of [2, 1, 0]) {
      const res = await anonymousCall(t.app, ip);
      expect(res.statusCode).toBe(200);
      expect(res.headers['ratelimit-limit']).toBe('3');
      expect(res.headers['ratelimit-remaining']).toBe(String(remaining));
      expect(Number(res.headers['ratelimit-reset'])).toBeGreaterThan(0);
    }
    const refused = await anonymousCall(t.app, ip);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(refused.json()).toMatchObject({
      code: 'RATE_LIMITED',
      status: 429,
      requestId: refused.headers['x-request-id'],
    });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
  });

  it('keeps every IP on its own budget', async () => {
    const noisy = freshIp();
    for (let i = 0; i < 4; i++) await anonymousCall(t.app, noisy);
    expect((await anonymousCall(t.app, noisy)).statusCode).toBe(429);
    expect((await anonymousCall(t.app, freshIp())).statusCode).toBe(200);
  });

  it('counts every address of one IPv6 /64 against one budget', async () => {
    const net = fresh64();
    for (const host of ['0:0:0:1', 'aaaa:bbbb:cccc:1', '0:0:0:2']) {
      expect((await anonymousCall(t.app, `${net}${host}`)).statusCode, host).toBe(200);
    }
    expect((await anonymousCall(t.app, `${net}dead:beef:0:42`)).statusCode).toBe(429);
    expect((await anonymousCall(t.app, `${net.toUpperCase()}DEAD:BEEF:0:43`)).statusCode).toBe(429);
    expect((await anonymousCall(t.app, `${fresh64()}0:0:0:1`)).statusCode).toBe(200);
  });

  it('counts an IPv4-mapped IPv6 address against its IPv4 address', async () => {
    const ip = freshIp();
    for (const address of [ip, `::ffff:${ip}`, ip])
      expect((await anonymousCall(t.app, address)).statusCode).toBe(200);
    expect((await anonymousCall(t.app, `::ffff:${ip}`)).statusCode).toBe(429);
  });

  it('never limits health, readiness, metrics or the OpenAPI document', async () => {
    const ip = freshIp();
    for (let i = 0; i < 4; i++) await anonymousCall(t.app, ip);
    for (const url of ['/health/live', '/health/ready', '/metrics', '/openapi.json']) {
      for (let i = 0; i < 5; i++) {
        const res = await t.app.inject({ method: 'GET', url, remoteAddress: ip });
        expect(res.statusCode, url).toBe(200);
        expect(res.headers['ratelimit-limit'], url).toBeUndefined();
      }
    }
  });
});

describe('authenticated rate limit per user', () => {
  let t: TestApp;
  let token: string;
  beforeAll(async () => {
    t = await startTestApp({ MERCATO_RATE_LIMIT_ANONYMOUS: '2', MERCATO_RATE_LIMIT_AUTHENTICATED: '5' });
    await createTenant(t.identity.deps.db, {
      slug: 'acme',
      name: 'Acme',
      adminEmail: 'admin@acme.test',
      adminPassword: PASSWORD,
    });
    const login = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { tenant: 'acme', email: 'admin@acme.test', password: PASSWORD },
    });
    token = login.json().accessToken;
  });
  afterAll(() => t?.close());

  const profile = (ip: string) =>
    t.app.inject({
      method: 'GET',
      url: '/api/v1/users/profile',
      remoteAddress: ip,
      headers: { authorization: `Bearer ${token}` },
    });

  it('gives a signed-in user the authenticated budget, counted apart from the IP', async () => {
    const ip = freshIp();
    // The IP's anonymous budget is spent first; the user on that same IP is not affected.
    await anonymousCall(t.app, ip);
    await anonymousCall(t.app, ip);
    expect((await anonymousCall(t.app, ip)).statusCode).toBe(429);

    for (let i = 0; i < 5; i++) {
      const res = await profile(ip);
      expect(res.statusCode).toBe(200);
      expect(res.headers['ratelimit-limit']).toBe('5');
    }
    const refused = await profile(ip);
    expect(refused.statusCode).toBe(429);
    expect(refused.json().code).toBe('RATE_LIMITED');
    expect(refused.headers['retry-after']).toBeDefined();

    // The budget follows the user to another address, and that address's anonymous budget is untouched.
    const elsewhere = freshIp();
    expect((await profile(elsewhere)).statusCode).toBe(429);
    expect((await anonymousCall(t.app, elsewhere)).statusCode).toBe(200);
  });
});

describe.skipIf(!testRedisUrl())('rate limits shared through Redis', () => {
  let a: TestApp;
  let b: TestApp;
  const ips: string[] = [];
  beforeAll(async () => {
    const env = { REDIS_URL: testRedisUrl()!, MERCATO_RATE_LIMIT_ANONYMOUS: '3' };
    [a, b] = await Promise.all([startTestApp(env), startTestApp(env)]);
  });
  afterAll(async () => {
    if (ips.length > 0) await a?.ctx.redis?.del(...ips.map((ip) => `mercato:ratelimit:ip:${ip}`));
    await Promise.all([a?.close(), b?.close()]);
  });

  it('counts requests to two app instances against one limit', async () => {
    const ip = freshIp();
    ips.push(ip);
    expect((await anonymousCall(a.app, ip)).headers['ratelimit-remaining']).toBe('2');
    expect((await anonymousCall(b.app, ip)).headers['ratelimit-remaining']).toBe('1');
    expect((await anonymousCall(a.app, ip)).headers['ratelimit-remaining']).toBe('0');
    const refused = await anonymousCall(b.app, ip);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBeDefined();
    expect((await anonymousCall(a.app, ip)).statusCode).toBe(429);
  });

  it('keeps limiting with in-process counters when Redis is gone, and logins keep answering', async () => {
    const t = await startTestApp({ REDIS_URL: testRedisUrl()!, MERCATO_RATE_LIMIT_ANONYMOUS: '3' });
    try {
      t.ctx.redis!.disconnect();
      const ip = freshIp();
      // Five calls against a limit of three: counted in the process, neither a 500 nor unlimited.
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await anonymousCall(t.app, ip)).statusCode);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      const login = await t.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        remoteAddress: freshIp(),
        payload: { tenant: 'acme', email: 'admin@acme.test', password: PASSWORD },
      });
      // The login throttle counts in the process too: the login is answered, not refused with 503.
      expect(login.statusCode, login.body).toBeLessThan(500);
    } finally {
      await t.close();
    }
  });

  it('stores the counter under the IP in Redis', async () => {
    const ip = freshIp();
    ips.push(ip);
    await anonymousCall(a.app, ip);
    const ttl = await a.ctx.redis!.pttl(`mercato:ratelimit:ip:${ip}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it("stores an IPv6 caller's counter under its /64 prefix in Redis", async () => {
    const net = fresh64();
    const key = `${net}:/64`;
    ips.push(key);
    await anonymousCall(a.app, `${net}1:2:3:4`);
    expect(await a.ctx.redis!.pttl(`mercato:ratelimit:ip:${key}`)).toBeGreaterThan(0);
  });
});

describe('rate limits behind a reverse proxy (MERCATO_TRUSTED_PROXIES)', () => {
  let t: TestApp;
  const proxy = freshIp();
  const viaProxy = (from: string, client: string) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/validate',
      remoteAddress: from,
      headers: { 'x-forwarded-for': client },
      payload: { token: 'nothing' },
    });
  beforeAll(async () => {
    t = await startTestApp({ MERCATO_RATE_LIMIT_ANONYMOUS: '2', MERCATO_TRUSTED_PROXIES: `${proxy}/32` });
  });
  afterAll(() => t?.close());

  it('counts each shopper behind a trusted proxy on their own budget', async () => {
    const [ada, bob] = [freshIp(), freshIp()];
    for (let i = 0; i < 2; i++) expect((await viaProxy(proxy, ada)).statusCode).toBe(200);
    expect((await viaProxy(proxy, ada)).statusCode).toBe(429);
    // The proxy's own address is not the budget: another shopper through it is served.
    expect((await viaProxy(proxy, bob)).statusCode).toBe(200);
  });

  it('ignores X-Forwarded-For from a caller that is not a trusted proxy', async () => {
    const caller = freshIp();
    // A fresh made-up address per request would be a fresh budget per request if it were believed.
    for (let i = 0; i < 2; i++) expect((await viaProxy(caller, freshIp())).statusCode).toBe(200);
    expect((await viaProxy(caller, freshIp())).statusCode).toBe(429);
  });
});
