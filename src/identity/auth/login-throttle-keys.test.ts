import { createHash, createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../platform/http/index.ts';
import { deriveKey, deriveServerKey, signingKeyMaterial } from '../../platform/index.ts';
import {
  startSecondProcess,
  startTestApp,
  type TestApp,
  testDatabaseKind,
  testRedisUrl,
} from '../../platform/testing/index.ts';
import { createTestTenant, PASSWORD, post } from './auth-test-fixtures.ts';
import { createLoginThrottle, LOGIN_THROTTLE_KEY_INFO } from './login-throttle.ts';

// The counter store the suite runs on: Redis when the run has one (it outlives runs: fresh names
// keep this run's counters its own), else the process's own.
const STORE_ENV: Record<string, string> = testRedisUrl() ? { REDIS_URL: testRedisUrl()! } : {};
const fresh = () => randomBytes(4).toString('hex');
const randomIp = () => `10.${[...randomBytes(3)].join('.')}`;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest('hex');

/** The inputs a counter name is made of, as the throttle has always joined them. */
const inputs = (slug: string, email: string, ip: string) => {
  const account = `${slug}\n${email}`;
  return { account, pair: `${account}\n${ip}` };
};
/** The names the counters had before they were keyed: the bare sha256 of their inputs. */
const unkeyedNames = (slug: string, email: string, ip: string) => {
  const { account, pair } = inputs(slug, email, ip);
  return [
    `login-failures:${sha256(pair)}`,
    `login-account-failures:${sha256(account)}`,
    `login-known-ip:${sha256(pair)}`,
  ];
};

const isThrottled = async (admit: Promise<void>) =>
  admit.then(
    () => false,
    (error: unknown) => {
      if (error instanceof AppError && error.code === 'LOGIN_THROTTLED') return true;
      throw error;
    },
  );

describe('login throttle counter names', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(STORE_ENV);
  });
  afterAll(() => t.close());

  it('names its counters by HMAC under the deployment key, never by the sha256 of tenant, email and IP', async () => {
    const user = await createTestTenant(t, `keyed-${fresh()}`);
    const [attacker, home] = [randomIp(), randomIp()];
    const login = (password: string, ip: string) =>
      post(t.app, '/api/v1/auth/login', { tenant: user.slug, email: user.adminEmail, password }, {}, ip);
    expect((await login('wrong-password-123', attacker)).statusCode).toBe(401);
    expect((await login(PASSWORD, home)).statusCode).toBe(200);

    const count = async (name: string) => (await t.ctx.counters.peek(name)).count;
    const unkeyed = [
      ...unkeyedNames(user.slug, user.adminEmail, attacker),
      ...unkeyedNames(user.slug, user.adminEmail, home),
    ];
    for (const name of unkeyed) expect(await count(name), name).toBe(0);

    const key = await deriveServerKey(t.ctx, t.ctx.db.kysely, LOGIN_THROTTLE_KEY_INFO);
    const fromAttacker = inputs(user.slug, user.adminEmail, attacker);
    expect(await count(`login-failures:${hmac(key, fromAttacker.pair)}`)).toBe(1);
    expect(await count(`login-account-failures:${hmac(key, fromAttacker.account)}`)).toBe(1);
    const fromHome = inputs(user.slug, user.adminEmail, home);
    expect(await count(`login-known-ip:${hmac(key, fromHome.pair)}`)).toBe(1);
  });

  it('shares counts between throttles built with one key, and counts apart under another key', async () => {
    const limits = { ...t.ctx.config.rateLimit, loginFailuresPerAccount: 2 };
    const [deployment, other] = [randomBytes(32), randomBytes(32)];
    const [one, two] = [0, 1].map(() => createLoginThrottle(t.ctx.counters, limits, deployment));
    const elsewhere = createLoginThrottle(t.ctx.counters, limits, other);
    const [slug, email, ip] = [`shared-${fresh()}`, 'someone@example.com', randomIp()];

    // Per (account, IP): two attempts through two processes use up the pair's budget of both.
    await one!.admit(slug, email, ip);
    await two!.admit(slug, email, ip);
    expect(await isThrottled(one!.admit(slug, email, ip))).toBe(true);
    expect(await isThrottled(elsewhere.admit(slug, email, ip))).toBe(false);

    // Per account from all IPs: 20 failures through either process brake both, not the other key.
    for (let i = 0; i < 20; i++) await (i % 2 ? one! : two!).failed(slug, email);
    expect(await isThrottled(two!.admit(slug, email, randomIp()))).toBe(true);
    expect(await isThrottled(elsewhere.admit(slug, email, randomIp()))).toBe(false);

    // An IP that signed in through one process is exempt through the other.
    const home = randomIp();
    await one!.succeeded(slug, email, home);
    expect(await isThrottled(two!.admit(slug, email, home))).toBe(false);
  });
});

describe('the login throttle key', () => {
  const secret = randomBytes(32).toString('base64');
  let a: TestApp;
  let b: TestApp;
  let unset: TestApp;
  beforeAll(async () => {
    [a, b, unset] = await Promise.all([
      startTestApp({ MERCATO_SECRETS_KEY: secret }),
      startTestApp({ MERCATO_SECRETS_KEY: secret }),
      startTestApp(),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), unset?.close()]);
  });
  const keyOf = (t: Pick<TestApp, 'ctx'>) => deriveServerKey(t.ctx, t.ctx.db.kysely, LOGIN_THROTTLE_KEY_INFO);

  it('is derived from MERCATO_SECRETS_KEY when set, the same in every process, never the encryption key', async () => {
    const key = await keyOf(a);
    expect(await keyOf(b)).toEqual(key);
    expect(key).not.toEqual(Buffer.from(secret, 'base64'));
    expect(key).toHaveLength(32);
  });

  it('is derived from the database signing key when unset, apart from the key that encrypts secrets', async () => {
    const key = await keyOf(unset);
    expect(key).not.toEqual(await keyOf(a));
    const material = await signingKeyMaterial(unset.ctx, unset.ctx.db.kysely);
    expect(material).toBeDefined();
    expect(key).toEqual(deriveKey(material!, LOGIN_THROTTLE_KEY_INFO));
    expect(key).not.toEqual(deriveKey(material!, 'mercato/secrets/v1'));
  });

  it.runIf(testDatabaseKind() === 'postgres')(
    'is the same in another process on the same database when unset',
    async () => {
      const second = await startSecondProcess(unset.databaseUrl!);
      try {
        expect(await keyOf(second)).toEqual(await keyOf(unset));
      } finally {
        await second.close();
      }
    },
  );
});
