import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../../platform/db/index.ts';
import { startTestApp, type TestApp, testRedisUrl } from '../../platform/testing/index.ts';
import { createTestTenant, login, PASSWORD, post, type TestTenant } from './auth-test-fixtures.ts';

const REGISTER = '/api/v1/auth/register';
const LOGIN = '/api/v1/auth/login';

/** The problem body without the fields that differ per request. */
const stable = (body: string) => {
  const { requestId: _r, instance: _i, ...rest } = JSON.parse(body) as Record<string, unknown>;
  return JSON.stringify(rest);
};

describe('register', () => {
  let t: TestApp;
  let shop: TestTenant;
  beforeAll(async () => {
    t = await startTestApp();
    shop = await createTestTenant(t, 'reg-shop');
  });
  afterAll(() => t.close());

  it('creates a customer, lowercasing the email, and lets them sign in', async () => {
    const response = await post(t.app, REGISTER, {
      tenant: shop.slug,
      email: 'Ada.Lovelace@Example.com',
      password: PASSWORD,
      name: 'Ada',
    });
    expect(response.statusCode).toBe(201);
    const user = response.json();
    expect(user).toMatchObject({
      tenantId: shop.id,
      email: 'ada.lovelace@example.com',
      name: 'Ada',
      role: 'customer',
    });
    expect(response.body).not.toMatch(/password/i);
    await expect(login(t.app, shop.slug, 'ADA.lovelace@example.com')).resolves.toHaveProperty('accessToken');
  });

  it('refuses a role, tenantId or id in the body', async () => {
    for (const extra of [
      { role: 'admin' },
      { tenantId: shop.id },
      { id: '01900000-0000-7000-8000-000000000000' },
    ]) {
      const response = await post(t.app, REGISTER, {
        tenant: shop.slug,
        email: 'mallory@example.com',
        password: PASSWORD,
        name: 'Mallory',
        ...extra,
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    }
  });

  it('answers 409 EMAIL_TAKEN for an email already registered, whatever its case', async () => {
    const body = { tenant: shop.slug, email: 'grace@example.com', password: PASSWORD, name: 'Grace' };
    expect((await post(t.app, REGISTER, body)).statusCode).toBe(201);
    const again = await post(t.app, REGISTER, { ...body, email: 'GRACE@example.com' });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'EMAIL_TAKEN' });
  });

  it('answers 404 for an unknown tenant and for the platform tenant', async () => {
    for (const tenant of ['no-such-shop', 'platform']) {
      const response = await post(t.app, REGISTER, {
        tenant,
        email: 'x@example.com',
        password: PASSWORD,
        name: 'X',
      });
      expect(response.statusCode).toBe(404);
      expect(response.json()).toMatchObject({ code: 'NOT_FOUND' });
    }
  });

  it('validates email format and password length', async () => {
    const base = { tenant: shop.slug, email: 'ok@example.com', password: PASSWORD, name: 'Ok' };
    for (const bad of [
      { email: 'not-an-email' },
      { password: 'short-pw' },
      { password: 'x'.repeat(129) },
      { name: '' },
    ]) {
      const response = await post(t.app, REGISTER, { ...base, ...bad });
      expect(response.statusCode).toBe(400);
      expect(response.json().errors[0].pointer).toBe(`/${Object.keys(bad)[0]}`);
    }
  });
});

describe('login', () => {
  let t: TestApp;
  let shop: TestTenant;
  beforeAll(async () => {
    t = await startTestApp();
    shop = await createTestTenant(t, 'login-shop');
  });
  afterAll(() => t.close());

  it('answers a Bearer token pair that is not cached', async () => {
    const response = await post(t.app, LOGIN, {
      tenant: shop.slug,
      email: shop.adminEmail,
      password: PASSWORD,
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.json()).toMatchObject({ tokenType: 'Bearer', expiresIn: 900 });
  });

  it('answers byte-identical refusals for a wrong password, an unknown user, an unknown tenant and a disabled user', async () => {
    const disabled = await createTestTenant(t, 'login-disabled');
    await withSystem(t.identity.deps.db, (trx) =>
      trx
        .updateTable('identity.users')
        .set({ status: 'disabled' })
        .where('id', '=', disabled.adminId)
        .execute(),
    );
    const attempts = [
      { tenant: shop.slug, email: shop.adminEmail, password: 'wrong-password-123' },
      { tenant: shop.slug, email: 'nobody@login-shop.test', password: 'wrong-password-123' },
      { tenant: 'no-such-shop', email: shop.adminEmail, password: PASSWORD },
      { tenant: disabled.slug, email: disabled.adminEmail, password: PASSWORD },
    ];
    const answers = await Promise.all(attempts.map((body) => post(t.app, LOGIN, body)));
    for (const answer of answers) {
      expect(answer.statusCode).toBe(401);
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    }
    const bodies = new Set(answers.map((a) => stable(a.body)));
    expect(bodies.size).toBe(1);
    expect(JSON.parse([...bodies][0]!)).toMatchObject({ code: 'INVALID_CREDENTIALS' });
  });

  it('throttles an account after too many failures with 429 and Retry-After, even for the right password', async () => {
    const victim = await createTestTenant(t, 'login-throttle');
    const attempt = (password: string) =>
      post(t.app, LOGIN, { tenant: victim.slug, email: victim.adminEmail, password });
    for (let i = 0; i < 5; i++) expect((await attempt('wrong-password-123')).statusCode).toBe(401);
    for (const password of ['wrong-password-123', PASSWORD]) {
      const response = await attempt(password);
      expect(response.statusCode).toBe(429);
      expect(response.json()).toMatchObject({ code: 'LOGIN_THROTTLED' });
      expect(Number(response.headers['retry-after'])).toBeGreaterThan(800);
    }
  });

  it('throttles an account that does not exist the same way', async () => {
    const attempt = () =>
      post(t.app, LOGIN, { tenant: shop.slug, email: 'ghost@example.com', password: 'guess-guess-1' });
    for (let i = 0; i < 5; i++) expect((await attempt()).statusCode).toBe(401);
    expect((await attempt()).json()).toMatchObject({ status: 429, code: 'LOGIN_THROTTLED' });
  });

  it('counts parallel guesses one by one, so a burst cannot slip past the limit', async () => {
    const target = await createTestTenant(t, 'login-burst');
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        post(t.app, LOGIN, { tenant: target.slug, email: target.adminEmail, password: 'wrong-password-123' }),
      ),
    );
    expect(answers.filter((a) => a.statusCode === 401)).toHaveLength(5);
    expect(answers.filter((a) => a.statusCode === 429)).toHaveLength(7);
  });

  it('clears the account count on a successful login', async () => {
    const user = await createTestTenant(t, 'login-reset');
    const attempt = (password: string) =>
      post(t.app, LOGIN, { tenant: user.slug, email: user.adminEmail, password });
    for (let i = 0; i < 4; i++) expect((await attempt('wrong-password-123')).statusCode).toBe(401);
    expect((await attempt(PASSWORD)).statusCode).toBe(200);
    for (let i = 0; i < 5; i++) expect((await attempt('wrong-password-123')).statusCode).toBe(401);
    expect((await attempt('wrong-password-123')).statusCode).toBe(429);
  });
});

describe('login rate limit per IP', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ MERCATO_LOGIN_RATE_LIMIT: '3' });
  });
  afterAll(() => t.close());

  it('answers 429 RATE_LIMITED with Retry-After past the limit, for that IP only', async () => {
    const attempt = (ip: string, n: number) =>
      post(
        t.app,
        LOGIN,
        { tenant: 'any-shop', email: `user${n}@example.com`, password: 'whatever-123' },
        {},
        ip,
      );
    for (let i = 0; i < 3; i++) expect((await attempt('10.0.0.1', i)).statusCode).toBe(401);
    const limited = await attempt('10.0.0.1', 9);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(limited.json()).toMatchObject({ code: 'RATE_LIMITED' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect((await attempt('10.0.0.2', 1)).statusCode).toBe(401);
  });

  it('limits registrations per IP as it limits logins (each costs a password hash)', async () => {
    const register = (ip: string, n: number) =>
      post(
        t.app,
        REGISTER,
        { tenant: 'any-shop', email: `new${n}@example.com`, password: PASSWORD, name: 'New' },
        {},
        ip,
      );
    for (let i = 0; i < 3; i++) expect((await register('10.0.1.1', i)).statusCode).toBe(404);
    const limited = await register('10.0.1.1', 9);
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'RATE_LIMITED' });
    expect((await register('10.0.1.2', 1)).statusCode).toBe(404);
  });

  it('counts every address of one IPv6 /64 against one limit', async () => {
    const attempt = (ip: string) =>
      post(t.app, LOGIN, { tenant: 'any-shop', email: 'user@example.com', password: 'whatever-123' }, {}, ip);
    for (let i = 1; i <= 3; i++) expect((await attempt(`2001:db8:7:7::${i}`)).statusCode).toBe(401);
    expect((await attempt('2001:db8:7:7:ffff:ffff:ffff:ffff')).statusCode).toBe(429);
    expect((await attempt('2001:db8:7:8::1')).statusCode).toBe(401);
  });
});

describe.skipIf(!testRedisUrl())('login throttling on Redis', () => {
  let a: TestApp;
  let b: TestApp;
  // Redis outlives test runs: fresh names keep this run's counters its own.
  const run = randomBytes(4).toString('hex');
  const randomIp = () => `10.${[...randomBytes(3)].join('.')}`;
  beforeAll(async () => {
    const env = {
      REDIS_URL: testRedisUrl()!,
      MERCATO_LOGIN_MAX_FAILURES: '3',
      MERCATO_LOGIN_RATE_LIMIT: '5',
      // One deployment: the apps' databases differ, so they share the throttle's key this way.
      MERCATO_SECRETS_KEY: randomBytes(32).toString('base64'),
    };
    [a, b] = await Promise.all([startTestApp(env), startTestApp(env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('shares the account throttle between two app instances', async () => {
    const body = {
      tenant: 'shared-shop',
      email: `victim-${run}@example.com`,
      password: 'wrong-password-123',
    };
    const ip = randomIp();
    for (const app of [a, b, a]) expect((await post(app.app, LOGIN, body, {}, ip)).statusCode).toBe(401);
    const throttled = await post(b.app, LOGIN, body, {}, ip);
    expect(throttled.statusCode).toBe(429);
    expect(throttled.json()).toMatchObject({ code: 'LOGIN_THROTTLED' });
    expect(Number(throttled.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('shares the per-IP login limit between two app instances', async () => {
    const ip = randomIp();
    const attempt = (t: TestApp, n: number) =>
      post(
        t.app,
        LOGIN,
        { tenant: 'shared-shop', email: `ip-${run}-${n}@example.com`, password: 'x-123456789' },
        {},
        ip,
      );
    for (let i = 0; i < 5; i++) expect((await attempt(i % 2 ? a : b, i)).statusCode).toBe(401);
    const limited = await attempt(a, 99);
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'RATE_LIMITED' });
    expect(limited.headers['retry-after']).toBeDefined();
  });
});
