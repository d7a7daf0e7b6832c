import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_ROLE, requestRoleName, withTenant } from '../platform/db/index.ts';
import { startTestApp, type TestApp, testDatabaseKind } from '../platform/testing/index.ts';
import { createTestTenant, type TestTenant } from './auth/auth-test-fixtures.ts';
import { addUser, bearer, send } from './users/user-test-fixtures.ts';

let t: TestApp;
let a: TestTenant;
let b: TestTenant;
let aAdmin: Record<string, string>;
let aCustomer: Record<string, string>;
let bAdmin: Record<string, string>;
let bCustomer: Record<string, string>;
let bCustomerId: string;
let bAddressId: string;
let bKeyId: string;

const address = {
  type: 'SHIPPING',
  recipient: 'B',
  line1: '1 Rue',
  city: 'Paris',
  postalCode: '75001',
  country: 'FR',
};

beforeAll(async () => {
  t = await startTestApp();
  a = await createTestTenant(t, 'tenant-a');
  b = await createTestTenant(t, 'tenant-b');
  await addUser(t, a.id, 'cus@a.test', 'customer');
  bCustomerId = (await addUser(t, b.id, 'cus@b.test', 'customer')).id;
  aAdmin = await bearer(t, 'tenant-a', a.adminEmail);
  aCustomer = await bearer(t, 'tenant-a', 'cus@a.test');
  bAdmin = await bearer(t, 'tenant-b', b.adminEmail);
  bCustomer = await bearer(t, 'tenant-b', 'cus@b.test');
  await send(t.app, 'POST', '/api/v1/users/addresses', aCustomer, {
    ...address,
    city: 'Lyon',
    postalCode: '69001',
  });
  bAddressId = (await send(t.app, 'POST', '/api/v1/users/addresses', bCustomer, address)).json().id;
  const key = await send(t.app, 'POST', '/api/v1/api-keys', bAdmin, {
    name: 'b-key',
    permissions: ['orders:read'],
  });
  bKeyId = key.json().id;
});
afterAll(() => t.close());

describe('tenant isolation over HTTP', () => {
  it("answers 404 for every id of another tenant, and leaves the other tenant's rows alone", async () => {
    const cases: [string, string, Record<string, string>, unknown?][] = [
      ['GET', `/api/v1/users/${bCustomerId}`, aAdmin],
      ['GET', `/api/v1/users/${b.adminId}`, aAdmin],
      ['PUT', `/api/v1/users/${bCustomerId}/role`, aAdmin, { role: 'admin' }],
      ['PUT', `/api/v1/users/${bCustomerId}/status`, aAdmin, { status: 'disabled' }],
      ['GET', `/api/v1/users/addresses/${bAddressId}`, aCustomer],
      ['PUT', `/api/v1/users/addresses/${bAddressId}`, aCustomer, { city: 'Nice' }],
      ['DELETE', `/api/v1/users/addresses/${bAddressId}`, aCustomer],
      ['DELETE', `/api/v1/api-keys/${bKeyId}`, aAdmin],
    ];
    for (const [method, url, headers, body] of cases) {
      const response = await send(t.app, method as 'GET', url, headers, body);
      expect(response.statusCode, `${method} ${url}`).toBe(404);
      expect(response.json().code).toBe('NOT_FOUND');
    }
    expect((await send(t.app, 'GET', `/api/v1/users/${bCustomerId}`, bAdmin)).json()).toMatchObject({
      role: 'customer',
      status: 'active',
    });
    expect((await send(t.app, 'GET', `/api/v1/users/addresses/${bAddressId}`, bCustomer)).json().city).toBe(
      'Paris',
    );
    const keys = (await send(t.app, 'GET', '/api/v1/api-keys', bAdmin)).json().items;
    expect(keys.map((k: { id: string }) => k.id)).toContain(bKeyId);
  });

  it('answers 403 when a tenant admin asks for any tenant, their own included', async () => {
    expect((await send(t.app, 'GET', `/api/v1/tenants/${b.id}`, aAdmin)).statusCode).toBe(403);
    expect((await send(t.app, 'GET', `/api/v1/tenants/${a.id}`, aAdmin)).statusCode).toBe(403);
  });

  it('lists only the caller tenant users', async () => {
    const items = (await send(t.app, 'GET', '/api/v1/users?limit=100', aAdmin)).json().items;
    expect(items.length).toBeGreaterThan(0);
    expect(items.every((u: { tenantId: string }) => u.tenantId === a.id)).toBe(true);
  });
});

describe('row-level security under withTenant', () => {
  it('returns only the current tenant rows to a query that forgets its tenant filter', async () => {
    const db = t.identity.deps.db;
    const users = await withTenant(db, a.id, (trx) => trx.selectFrom('identity.users').selectAll().execute());
    expect(users.length).toBe(2);
    expect(users.every((u) => u.tenant_id === a.id)).toBe(true);
    const addresses = await withTenant(db, a.id, (trx) =>
      trx.selectFrom('identity.addresses').selectAll().execute(),
    );
    expect(addresses.length).toBe(1);
    expect(addresses.every((x) => x.tenant_id === a.id)).toBe(true);
    const tenants = await withTenant(db, a.id, (trx) =>
      trx.selectFrom('identity.tenants').select('id').execute(),
    );
    expect(tenants).toEqual([{ id: a.id }]);
    const none = await withTenant(db, a.id, async (trx) => {
      await sql`select set_config('app.tenant_id', '', true)`.execute(trx);
      return trx.selectFrom('identity.users').select('id').execute();
    });
    expect(none).toEqual([]);
  });

  it('cannot write rows of another tenant: inserts are refused, updates and deletes touch nothing', async () => {
    const db = t.identity.deps.db;
    const insert = withTenant(db, a.id, (trx) =>
      trx
        .insertInto('identity.users')
        .values({
          id: '01900000-0000-7000-8000-0000000000bb',
          tenant_id: b.id,
          email: 'mole@b.test',
          password_hash: 'x',
          name: 'Mole',
          role: 'admin',
          created_at: new Date(),
          updated_at: new Date(),
        })
        .execute(),
    );
    await expect(insert).rejects.toThrow(/row-level security/);
    const moved = withTenant(db, a.id, (trx) =>
      trx.updateTable('identity.users').set({ tenant_id: b.id }).where('email', '=', 'cus@a.test').execute(),
    );
    await expect(moved).rejects.toThrow(/row-level security/);
    const touched = await withTenant(db, a.id, async (trx) => {
      // No where clause: it reaches the tenant's own single address and nothing else.
      const updated = await trx.updateTable('identity.addresses').set({ city: 'Lyon 2' }).executeTakeFirst();
      const deleted = await trx
        .deleteFrom('identity.addresses')
        .where('id', '=', bAddressId)
        .executeTakeFirst();
      return [Number(updated.numUpdatedRows), Number(deleted.numDeletedRows)];
    });
    expect(touched).toEqual([1, 0]);
    expect((await send(t.app, 'GET', `/api/v1/users/addresses/${bAddressId}`, bCustomer)).json().city).toBe(
      'Paris',
    );
  });

  it('refuses to switch row security off for the app role', async () => {
    const attempt = withTenant(t.identity.deps.db, a.id, async (trx) => {
      await sql`set local row_security = off`.execute(trx);
      return trx.selectFrom('identity.users').selectAll().execute();
    });
    await expect(attempt).rejects.toThrow(/row-level security/);
  });

  it('gives the app role no way around the policies: no superuser, no bypass, owns no table, cannot become the owner', async () => {
    const facts = await withTenant(t.identity.deps.db, a.id, async (trx) => {
      const role = await sql<{ rolsuper: boolean; rolbypassrls: boolean; rolcanlogin: boolean }>`
        select rolsuper, rolbypassrls, rolcanlogin from pg_roles where rolname = ${APP_ROLE}`.execute(trx);
      const owned = await sql<{ n: number }>`
        select count(*)::int as n from pg_tables where tableowner = ${APP_ROLE}`.execute(trx);
      const owners = await sql<{ owner: string; member: boolean }>`
        select distinct tableowner as owner, pg_has_role(${APP_ROLE}, tableowner, 'member') as member
        from pg_tables where schemaname = 'identity'`.execute(trx);
      return { role: role.rows[0], owned: owned.rows[0]!.n, owners: owners.rows };
    });
    expect(facts.role).toEqual({ rolsuper: false, rolbypassrls: false, rolcanlogin: false });
    expect(facts.owned).toBe(0);
    expect(facts.owners.length).toBeGreaterThan(0);
    expect(facts.owners.every((o) => !o.member)).toBe(true);
  });

  // PGlite has one superuser session, so there `reset role` returns to a superuser: isolation in
  // the embedded shape rests on every request running under withTenant. On PostgreSQL, withTenant
  // runs on a pool that logs in as the database's request role, a mere member of mercato_app.
  it.runIf(testDatabaseKind() === 'postgres')(
    'serves requests with a login role that stays filtered after reset role and cannot become the owner',
    async () => {
      const seen = await withTenant(t.identity.deps.db, a.id, async (trx) => {
        await sql`reset role`.execute(trx);
        const who = await sql<{ session_user: string; current_user: string; rolsuper: boolean }>`
          select session_user, current_user, rolsuper from pg_roles where rolname = session_user`.execute(
          trx,
        );
        const rows = await sql<{ tenant_id: string }>`select tenant_id from identity.users`.execute(trx);
        return { who: who.rows[0]!, tenants: rows.rows.map((r) => r.tenant_id) };
      });
      expect(seen.who.session_user).toBe(requestRoleName(new URL(t.databaseUrl!).pathname.slice(1)));
      expect(seen.who.rolsuper).toBe(false);
      expect(seen.tenants.length).toBe(2);
      expect(seen.tenants.every((id) => id === a.id)).toBe(true);

      const becomeOwner = withTenant(t.identity.deps.db, a.id, async (trx) => {
        const owner = await sql<{ tableowner: string }>`
          select tableowner from pg_tables where schemaname = 'identity' and tablename = 'users'`.execute(
          trx,
        );
        await sql.raw(`set role ${owner.rows[0]!.tableowner}`).execute(trx);
      });
      await expect(becomeOwner).rejects.toThrow(/permission denied/);
      const secrets = withTenant(t.identity.deps.db, a.id, (trx) =>
        sql`select password from platform.request_credentials`.execute(trx),
      );
      await expect(secrets).rejects.toThrow(/permission denied/);
    },
  );
});
