import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp, testRedisUrl } from '../../platform/testing/index.ts';
import { createTestTenant, PASSWORD, post, type TestTenant } from './auth-test-fixtures.ts';

const LOGIN = '/api/v1/auth/login';
const WRONG = 'wrong-password-123';
const randomIp = () => `10.${[...randomBytes(3)].join('.')}`;
/** A random IPv6 /64 (documentation range) as `2001:db8:x:y:`: append an interface identifier. */
const random64 = () => `2001:db8:${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}:`;

const attempt = (t: TestApp, user: TestTenant, password: string, ip: string) =>
  post(t.app, LOGIN, { tenant: user.slug, email: user.adminEmail, password }, {}, ip);

const expectThrottled = (response: Awaited<ReturnType<typeof attempt>>) => {
  expect(response.statusCode).toBe(429);
  expect(response.json()).toMatchObject({ code: 'LOGIN_THROTTLED' });
  expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
};

describe('login throttling per (account, IP) and per account', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('five wrong passwords from one IP do not lock the real user out from another', async () => {
    const victim = await createTestTenant(t, 'lockout-victim');
    const [attacker, home] = [randomIp(), randomIp()];
    for (let i = 0; i < 5; i++) expect((await attempt(t, victim, WRONG, attacker)).statusCode).toBe(401);
    expectThrottled(await attempt(t, victim, PASSWORD, attacker));
    expect((await attempt(t, victim, PASSWORD, home)).statusCode).toBe(200);
  });

  it('counts every address of one IPv6 /64 as one IP, and another /64 as another', async () => {
    const victim = await createTestTenant(t, 'lockout-ipv6');
    const attacker = random64();
    for (let i = 1; i <= 5; i++)
      expect((await attempt(t, victim, WRONG, `${attacker}:${i}`)).statusCode).toBe(401);
    expectThrottled(await attempt(t, victim, PASSWORD, `${attacker}1234:5678:9abc:def0`));
    expect((await attempt(t, victim, PASSWORD, `${random64()}:1`)).statusCode).toBe(200);
  });

  it('counts an IPv4-mapped IPv6 address as its IPv4 address', async () => {
    const victim = await createTestTenant(t, 'lockout-mapped');
    const ip = randomIp();
    for (let i = 0; i < 5; i++) {
      const address = i % 2 ? `::ffff:${ip}` : ip;
      expect((await attempt(t, victim, WRONG, address)).statusCode).toBe(401);
    }
    expectThrottled(await attempt(t, victim, PASSWORD, `::ffff:${ip}`));
  });
});

describe('login throttling per account from all IPs', () => {
  let t: TestApp;
  beforeAll(async () => {
    // Two per (account, IP) makes the account's all-IPs budget 20 failures.
    t = await startTestApp({ MERCATO_LOGIN_MAX_FAILURES: '2' });
  });
  afterAll(() => t.close());

  it('throttles an account guessed at from many IPs, except from an IP that signed in to it before', async () => {
    const victim = await createTestTenant(t, 'distributed');
    const home = randomIp();
    expect((await attempt(t, victim, PASSWORD, home)).statusCode).toBe(200);
    for (let i = 0; i < 10; i++) {
      const ip = randomIp();
      for (let j = 0; j < 2; j++) expect((await attempt(t, victim, WRONG, ip)).statusCode).toBe(401);
    }
    expectThrottled(await attempt(t, victim, PASSWORD, randomIp()));
    expect((await attempt(t, victim, PASSWORD, home)).statusCode).toBe(200);
  });

  it('exempts the whole IPv6 /64 that signed in before, and no other /64', async () => {
    const victim = await createTestTenant(t, 'distributed-ipv6');
    const home = random64();
    expect((await attempt(t, victim, PASSWORD, `${home}:1`)).statusCode).toBe(200);
    for (let i = 0; i < 10; i++) {
      const net = random64();
      for (let j = 1; j <= 2; j++)
        expect((await attempt(t, victim, WRONG, `${net}:${j}`)).statusCode).toBe(401);
    }
    expectThrottled(await attempt(t, victim, PASSWORD, `${random64()}:1`));
    expect((await attempt(t, victim, PASSWORD, `${home}abcd:ef01:2345:6789`)).statusCode).toBe(200);
  });

  it('does not count successful sign-ins against the account', async () => {
    const user = await createTestTenant(t, 'busy-account');
    for (let i = 0; i < 25; i++) expect((await attempt(t, user, PASSWORD, randomIp())).statusCode).toBe(200);
  });
});

describe.skipIf(!testRedisUrl())('login throttling per (account, IP) on Redis', () => {
  let a: TestApp;
  let b: TestApp;
  // Redis outlives test runs: a fresh tenant name keeps this run's counters its own.
  const slug = `lockout-${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    // Two processes of one deployment: each app has a database of its own, so they share the
    // secret the throttle's counter names are keyed under through MERCATO_SECRETS_KEY.
    const env = {
      REDIS_URL: testRedisUrl()!,
      MERCATO_LOGIN_MAX_FAILURES: '3',
      MERCATO_SECRETS_KEY: randomBytes(32).toString('base64'),
    };
    [a, b] = await Promise.all([startTestApp(env), startTestApp(env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('shares the attacker IP throttle between instances and still lets the user in from another IP', async () => {
    const victim = await createTestTenant(a, slug);
    const [attacker, home] = [randomIp(), randomIp()];
    for (const t of [a, b, a]) expect((await attempt(t, victim, WRONG, attacker)).statusCode).toBe(401);
    expectThrottled(await attempt(b, victim, WRONG, attacker));
    expectThrottled(await attempt(a, victim, PASSWORD, attacker));
    expect((await attempt(a, victim, PASSWORD, home)).statusCode).toBe(200);
  });
});
