import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import {
  startSecondProcess,
  startTestApp,
  type TestApp,
  testDatabaseKind,
} from '../../platform/testing/index.ts';
import { createTestTenant, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { createProfileCache } from './profile-cache.ts';
import type { User } from './user-store.ts';
import { addUser, bearer, send } from './user-test-fixtures.ts';

const user = (id: string, tenantId = 't1', name = 'Ada'): User =>
  ({ id, tenantId, name, email: `${id}@x.test`, role: 'customer', phone: null }) as unknown as User;

describe('profile cache rules', () => {
  it('reads through until enabled, then serves hits until the TTL ends', async () => {
    let clock = 0;
    let loads = 0;
    const cache = createProfileCache({ ttlMs: 1000, now: () => clock });
    const load = async () => {
      loads += 1;
      return user('u1');
    };
    await cache.read('t1', 'u1', load);
    await cache.read('t1', 'u1', load);
    expect(loads).toBe(2);
    cache.enable();
    await cache.read('t1', 'u1', load);
    await cache.read('t1', 'u1', load);
    expect(loads).toBe(3);
    clock = 1001;
    await cache.read('t1', 'u1', load);
    expect(loads).toBe(4);
  });

  it('never caches a load that overlapped an invalidation', async () => {
    const cache = createProfileCache({ ttlMs: 60_000 });
    cache.enable();
    let release!: () => void;
    const slow = cache.read(
      't1',
      'u1',
      () => new Promise((resolve) => (release = () => resolve(user('u1', 't1', 'Old')))),
    );
    cache.invalidate('u1');
    release();
    expect((await slow)?.name).toBe('Old');
    expect((await cache.read('t1', 'u1', async () => user('u1', 't1', 'New')))?.name).toBe('New');
  });

  it('does not serve an entry to another tenant, and keeps at most maxEntries', async () => {
    const cache = createProfileCache({ ttlMs: 60_000, maxEntries: 2 });
    cache.enable();
    await cache.read('t1', 'u1', async () => user('u1', 't1'));
    expect(await cache.read('t2', 'u1', async () => undefined)).toBeUndefined();
    await cache.read('t1', 'u2', async () => user('u2'));
    await cache.read('t1', 'u3', async () => user('u3'));
    expect(cache.size).toBe(2);
  });
});

describe('profile reads follow every change to the user', () => {
  let t: TestApp;
  let shop: TestTenant;
  let admin: Record<string, string>;
  let customer: Record<string, string>;
  let customerId: string;

  beforeAll(async () => {
    t = await startTestApp();
    shop = await createTestTenant(t, 'cache');
    admin = await bearer(t, shop.slug, shop.adminEmail);
    customerId = (await addUser(t, shop.id, 'staffer@cache.test', 'staff')).id;
    customer = await bearer(t, shop.slug, 'staffer@cache.test');
  });
  afterAll(() => t.close());

  const profile = async (headers = customer) =>
    (await send(t.app, 'GET', '/api/v1/users/profile', headers)).json<User>();
  const eventually = async (check: () => Promise<boolean>) => {
    for (let i = 0; i < 100 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await check()).toBe(true);
  };

  it('shows a profile edit on the next read', async () => {
    expect((await profile()).name).toBe('staffer');
    // The read was cached: these tests prove invalidation, not a cache that never holds anything.
    expect(t.identity.deps.profiles.size).toBe(1);
    await send(t.app, 'PUT', '/api/v1/users/profile', customer, { name: 'Renamed' });
    await eventually(async () => (await profile()).name === 'Renamed');
  });

  it('shows a role an admin changed through another route', async () => {
    expect((await profile()).role).toBe('staff');
    const changed = await send(t.app, 'PUT', `/api/v1/users/${customerId}/role`, admin, { role: 'operator' });
    expect(changed.statusCode).toBe(200);
    // The old access token names the old role and is refused; a new sign-in reads the new one.
    customer = await bearer(t, shop.slug, 'staffer@cache.test');
    await eventually(async () => (await profile()).role === 'operator');
  });

  it('shows a change made in SQL behind the API', async () => {
    await profile();
    await withTenant(t.identity.deps.db, shop.id, (trx) =>
      sql`update identity.users set name = 'From SQL' where id = ${customerId}`.execute(trx),
    );
    await eventually(async () => (await profile()).name === 'From SQL');
  });

  // Two processes on one PostgreSQL: a change through one reaches the other's cache.
  it.runIf(testDatabaseKind() === 'postgres')('shows a change made by another process', async () => {
    const other = await startSecondProcess(t.databaseUrl!);
    try {
      const read = async () =>
        (await other.app.inject({ url: '/api/v1/users/profile', headers: customer })).json<User>().name;
      await read();
      await send(t.app, 'PUT', '/api/v1/users/profile', customer, { name: 'Elsewhere' });
      await eventually(async () => (await read()) === 'Elsewhere');
    } finally {
      await other.close();
    }
  });
});
