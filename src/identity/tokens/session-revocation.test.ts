import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import {
  startSecondProcess,
  startTestApp,
  type TestApp,
  testDatabaseKind,
} from '../../platform/testing/index.ts';
import { createTestTenant, login, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { addUser, bearer, send } from '../users/user-test-fixtures.ts';
import { createSessionCache, type SessionRecord } from './session-cache.ts';

const token = { tenantId: 't1', userId: 'u1', sessionId: 's1', role: 'admin' as const };
const record = (over: Partial<SessionRecord> = {}): SessionRecord => ({
  status: 'active',
  role: 'admin',
  sessionLive: true,
  ...over,
});

describe('session cache rules', () => {
  it('answers a hit without loading, once enabled', async () => {
    const cache = createSessionCache();
    let loads = 0;
    const load = async () => {
      loads += 1;
      return record();
    };
    expect(await cache.check(token, load)).toBeUndefined();
    cache.enable();
    for (let i = 0; i < 3; i++) expect(await cache.check(token, load)).toBeUndefined();
    expect(loads).toBe(2);
  });

  it('judges revoked sessions, disabled users and changed roles, and remembers the verdict', async () => {
    const cache = createSessionCache();
    cache.enable();
    const cases: [Partial<SessionRecord>, string][] = [
      [{ sessionLive: false }, 'session revoked'],
      [{ status: 'disabled' }, 'account disabled'],
      [{ role: 'staff' }, 'role changed'],
    ];
    for (const [over, verdict] of cases) {
      cache.invalidate('u1');
      expect(await cache.check(token, async () => record(over))).toBe(verdict);
      expect(await cache.check(token, async () => record())).toBe(verdict);
    }
    expect(await cache.check(token, async () => undefined)).toBe('role changed');
    cache.invalidate('u1');
    expect(await cache.check(token, async () => undefined)).toBe('account disabled');
  });

  it('never caches a load that overlapped an invalidation', async () => {
    const cache = createSessionCache();
    cache.enable();
    let release!: () => void;
    const slow = cache.check(token, () => new Promise((resolve) => (release = () => resolve(record()))));
    cache.invalidate('u1');
    release();
    expect(await slow).toBeUndefined();
    expect(await cache.check(token, async () => record({ sessionLive: false }))).toBe('session revoked');
  });

  it('reloads for another tenant or after the TTL, and keeps at most maxUsers', async () => {
    let clock = 0;
    const cache = createSessionCache({ ttlMs: 1000, maxUsers: 2, now: () => clock });
    cache.enable();
    await cache.check(token, async () => record());
    expect(await cache.check({ ...token, tenantId: 't2' }, async () => undefined)).toBe('account disabled');
    await cache.check(token, async () => record());
    clock = 1001;
    expect(await cache.check(token, async () => record({ status: 'disabled' }))).toBe('account disabled');
    await cache.check({ ...token, userId: 'u2' }, async () => record());
    await cache.check({ ...token, userId: 'u3' }, async () => record());
    expect(cache.size).toBe(2);
  });
});

const PROFILE = '/api/v1/users/profile';

/**
 * Polls until check holds (NOTIFY reaches the cache asynchronously), then asserts it. The cache
 * keeps entries 60 s, far longer than this polls, so only a notification can make it hold.
 */
const eventually = async (check: () => Promise<boolean>) => {
  for (let i = 0; i < 250 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
  expect(await check()).toBe(true);
};

describe('old access tokens stop working when their user or session changes', () => {
  let t: TestApp;
  let shop: TestTenant;
  let admin: Record<string, string>;
  let seq = 0;
  beforeAll(async () => {
    t = await startTestApp();
    shop = await createTestTenant(t, 'revocation');
    admin = await bearer(t, shop.slug, shop.adminEmail);
  });
  afterAll(() => t.close());

  /** A new user of the role, signed in, whose session is already cached by a first read. */
  const signedIn = async (role: 'staff' | 'admin') => {
    seq += 1;
    const email = `${role}${seq}@revocation.test`;
    const user = await addUser(t, shop.id, email, role);
    const headers = await bearer(t, shop.slug, email);
    expect((await send(t.app, 'GET', PROFILE, headers)).statusCode).toBe(200);
    return { user, headers };
  };
  const refusedWith401 = async (app: TestApp['app'], headers: Record<string, string>) => {
    const response = await send(app, 'GET', PROFILE, headers);
    return response.statusCode === 401 && response.json().code === 'INVALID_TOKEN';
  };

  it('caches the session check of a signed-in request, so these tests prove invalidation', async () => {
    await signedIn('staff');
    expect(t.identity.deps.tokens.sessions.size).toBeGreaterThan(0);
  });

  it("refuses a disabled user's old access token with 401 INVALID_TOKEN", async () => {
    const { user, headers } = await signedIn('staff');
    const disabled = await send(t.app, 'PUT', `/api/v1/users/${user.id}/status`, admin, {
      status: 'disabled',
    });
    expect(disabled.statusCode).toBe(200);
    await eventually(() => refusedWith401(t.app, headers));
  });

  it("refuses a demoted admin's old token: no new admin, no wildcard API key", async () => {
    const { user, headers } = await signedIn('admin');
    const demoted = await send(t.app, 'PUT', `/api/v1/users/${user.id}/role`, admin, { role: 'staff' });
    expect(demoted.statusCode).toBe(200);
    await eventually(() => refusedWith401(t.app, headers));
    const newAdmin = await send(t.app, 'POST', '/api/v1/users', headers, {
      email: 'sleeper@revocation.test',
      password: 'correct-horse-battery-staple',
      name: 'Sleeper',
      role: 'admin',
    });
    expect(newAdmin.statusCode).toBe(401);
    expect(newAdmin.json()).toMatchObject({ code: 'INVALID_TOKEN' });
    const key = await send(t.app, 'POST', '/api/v1/api-keys', headers, {
      name: 'backdoor',
      permissions: ['users:*', 'orders:*'],
      namespaces: ['*'],
    });
    expect(key.statusCode).toBe(401);
    expect(key.json()).toMatchObject({ code: 'INVALID_TOKEN' });
  });

  it('lets a demoted user refresh into a token of the new role', async () => {
    seq += 1;
    const email = `promoted${seq}@revocation.test`;
    const user = await addUser(t, shop.id, email, 'staff');
    const pair = await login(t.app, shop.slug, email);
    const old = { authorization: `Bearer ${pair.accessToken}` };
    expect((await send(t.app, 'GET', PROFILE, old)).statusCode).toBe(200);
    await send(t.app, 'PUT', `/api/v1/users/${user.id}/role`, admin, { role: 'operator' });
    await eventually(() => refusedWith401(t.app, old));
    const fresh = await send(t.app, 'POST', '/api/v1/auth/refresh', {}, { refreshToken: pair.refreshToken });
    expect(fresh.statusCode).toBe(200);
    const renewed = { authorization: `Bearer ${fresh.json().accessToken}` };
    expect((await send(t.app, 'GET', PROFILE, renewed)).json()).toMatchObject({ role: 'operator' });
  });

  it('follows a change made in SQL behind the API', async () => {
    const { user, headers } = await signedIn('staff');
    await withTenant(t.identity.deps.db, shop.id, (trx) =>
      sql`update identity.users set status = 'disabled' where id = ${user.id}`.execute(trx),
    );
    await eventually(() => refusedWith401(t.app, headers));
  });

  it('follows a session revoked in SQL behind the API (reuse detection elsewhere, an erasure)', async () => {
    const { user, headers } = await signedIn('staff');
    await withTenant(t.identity.deps.db, shop.id, (trx) =>
      sql`update identity.refresh_tokens set revoked_at = now() where user_id = ${user.id}`.execute(trx),
    );
    await eventually(() => refusedWith401(t.app, headers));
  });

  // Two processes on one PostgreSQL: a change through one reaches the other's cache.
  it.runIf(testDatabaseKind() === 'postgres')(
    'refuses, in another process, a token disabled or logged out through the first',
    async () => {
      const other = await startSecondProcess(t.databaseUrl!);
      try {
        const disabled = await signedIn('staff');
        seq += 1;
        const email = `leaver${seq}@revocation.test`;
        await addUser(t, shop.id, email, 'staff');
        const pair = await login(t.app, shop.slug, email);
        const leaver = { authorization: `Bearer ${pair.accessToken}` };
        for (const headers of [disabled.headers, leaver])
          expect((await send(other.app, 'GET', PROFILE, headers)).statusCode).toBe(200);
        await send(t.app, 'PUT', `/api/v1/users/${disabled.user.id}/status`, admin, { status: 'disabled' });
        await send(t.app, 'POST', '/api/v1/auth/logout', {}, { refreshToken: pair.refreshToken });
        await eventually(() => refusedWith401(other.app, disabled.headers));
        await eventually(() => refusedWith401(other.app, leaver));
      } finally {
        await other.close();
      }
    },
  );
});
