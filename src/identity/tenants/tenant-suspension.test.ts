import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant, login, PASSWORD, post, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { bearer, platformAdmin, send } from '../users/user-test-fixtures.ts';

let t: TestApp;
let root: Record<string, string>;

beforeAll(async () => {
  t = await startTestApp();
  root = (await platformAdmin(t)).headers;
});
afterAll(() => t.close());

const patch = (slug: string, body: unknown, headers = root) =>
  send(t.app, 'PATCH', `/api/v1/tenants/${slug}`, headers, body);

/** A tenant with its admin's Authorization header and an API key that reads users. */
async function tenantWithCredentials(slug: string) {
  const tenant = await createTestTenant(t, slug);
  const admin = await bearer(t, slug, tenant.adminEmail);
  const created = await post(t.app, '/api/v1/api-keys', { name: 'crm', permissions: ['users:read'] }, admin);
  expect(created.statusCode, created.body).toBe(201);
  return { tenant, admin, apiKey: { 'x-api-key': created.json<{ key: string }>().key } };
}

describe('PATCH /tenants/{slug}', () => {
  it('renames a tenant by slug or id, and answers 404 for an unknown one', async () => {
    const shop = await createTestTenant(t, 'rename-me');
    const renamed = await patch('rename-me', { name: 'Renamed Shop' });
    expect(renamed.statusCode, renamed.body).toBe(200);
    expect(renamed.json()).toMatchObject({ slug: 'rename-me', name: 'Renamed Shop', status: 'active' });
    const byId = await patch(shop.id, { name: 'By Id' });
    expect(byId.json()).toMatchObject({ id: shop.id, name: 'By Id' });
    const absent = await patch('no-such-shop', { name: 'x' });
    expect(absent.statusCode).toBe(404);
    expect(absent.json().code).toBe('NOT_FOUND');
  });

  it('rejects an empty body, unknown fields and an unknown status, naming the field', async () => {
    await createTestTenant(t, 'strict');
    expect((await patch('strict', {})).statusCode).toBe(400);
    const extra = await patch('strict', { slug: 'other' });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().errors[0].pointer).toBe('/slug');
    const status = await patch('strict', { status: 'deleted' });
    expect(status.statusCode).toBe(400);
    expect(status.json().errors[0].pointer).toBe('/status');
    expect((await patch('Not_A_Slug', { name: 'x' })).statusCode).toBe(400);
  });

  it('is for platform admins only: a tenant admin gets 403, even for their own tenant', async () => {
    const { admin } = await tenantWithCredentials('self-serve');
    const own = await patch('self-serve', { status: 'suspended' }, admin);
    expect(own.statusCode).toBe(403);
    expect((await send(t.app, 'GET', '/api/v1/users', admin)).statusCode).toBe(200);
  });

  it('refuses to suspend the platform tenant (409) but renames it', async () => {
    const refused = await patch('platform', { status: 'suspended' });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().code).toBe('CONFLICT');
    expect((await send(t.app, 'GET', '/api/v1/tenants?limit=1', root)).statusCode).toBe(200);
    const renamed = await patch('platform', { name: 'Operator' });
    expect(renamed.json()).toMatchObject({ slug: 'platform', name: 'Operator', status: 'active' });
  });
});

describe('a suspended tenant', () => {
  let shop: TestTenant;
  let admin: Record<string, string>;
  let apiKey: Record<string, string>;
  let other: Record<string, string>;
  let refreshToken: string;

  beforeAll(async () => {
    ({ tenant: shop, admin, apiKey } = await tenantWithCredentials('suspended-shop'));
    other = (await tenantWithCredentials('bystander')).admin;
    refreshToken = (await login(t.app, 'suspended-shop', shop.adminEmail)).refreshToken;
    // Both credentials work, and were just used (so any per-process cache holds them).
    expect((await send(t.app, 'GET', '/api/v1/users', admin)).statusCode).toBe(200);
    expect((await send(t.app, 'GET', '/api/v1/users', apiKey)).statusCode).toBe(200);
    const suspended = await patch('suspended-shop', { status: 'suspended' });
    expect(suspended.statusCode, suspended.body).toBe(200);
    expect(suspended.json().status).toBe('suspended');
  });

  it('answers 403 TENANT_SUSPENDED to a previously valid access token and API key', async () => {
    for (const headers of [admin, apiKey]) {
      const response = await send(t.app, 'GET', '/api/v1/users', headers);
      expect(response.statusCode).toBe(403);
      expect(response.json().code).toBe('TENANT_SUSPENDED');
    }
    const write = await send(t.app, 'POST', '/api/v1/users', admin, {
      email: 'new@suspended-shop.test',
      password: PASSWORD,
      name: 'New',
      role: 'staff',
    });
    expect(write.statusCode).toBe(403);
  });

  it('refuses its logins with TENANT_SUSPENDED, and a wrong password still with 401', async () => {
    const right = await post(t.app, '/api/v1/auth/login', {
      tenant: 'suspended-shop',
      email: shop.adminEmail,
      password: PASSWORD,
    });
    expect(right.statusCode).toBe(403);
    expect(right.json().code).toBe('TENANT_SUSPENDED');
    const wrong = await post(t.app, '/api/v1/auth/login', {
      tenant: 'suspended-shop',
      email: shop.adminEmail,
      password: 'not-the-password',
    });
    expect(wrong.statusCode).toBe(401);
  });

  it('answers 403 TENANT_SUSPENDED to a refresh, keeping the session for later', async () => {
    const refused = await post(t.app, '/api/v1/auth/refresh', { refreshToken });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().code).toBe('TENANT_SUSPENDED');
  });

  it('has POST /auth/validate call its access tokens inactive, as every route refuses them', async () => {
    const token = admin.authorization!.replace(/^Bearer /, '');
    const answer = await post(t.app, '/api/v1/auth/validate', { token });
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toEqual({ active: false });
  });

  it('leaves other tenants alone', async () => {
    expect((await send(t.app, 'GET', '/api/v1/users', other)).statusCode).toBe(200);
  });

  it('works again once resumed: the same token and key, and its logins', async () => {
    const resumed = await patch('suspended-shop', { status: 'active' });
    expect(resumed.json().status).toBe('active');
    expect((await send(t.app, 'GET', '/api/v1/users', admin)).statusCode).toBe(200);
    expect((await send(t.app, 'GET', '/api/v1/users', apiKey)).statusCode).toBe(200);
    await expect(login(t.app, 'suspended-shop', shop.adminEmail)).resolves.toHaveProperty('accessToken');
    const refreshed = await post(t.app, '/api/v1/auth/refresh', { refreshToken });
    expect(refreshed.statusCode, refreshed.body).toBe(200);
    const token = admin.authorization!.replace(/^Bearer /, '');
    expect((await post(t.app, '/api/v1/auth/validate', { token })).json()).toMatchObject({ active: true });
  });
});

describe('suspension across processes', () => {
  it('reaches a process that did not make the change, through NOTIFY', async () => {
    const { admin } = await tenantWithCredentials('elsewhere');
    expect((await send(t.app, 'GET', '/api/v1/users', admin)).statusCode).toBe(200);
    // Another process suspends the tenant: straight in the database, as a second server would.
    await t.identity.deps.db
      .updateTable('identity.tenants')
      .set({ status: 'suspended' })
      .where('slug', '=', 'elsewhere')
      .execute();
    await expect
      .poll(async () => (await send(t.app, 'GET', '/api/v1/users', admin)).statusCode, { timeout: 5_000 })
      .toBe(403);
    await t.identity.deps.db
      .updateTable('identity.tenants')
      .set({ status: 'active' })
      .where('slug', '=', 'elsewhere')
      .execute();
    await expect
      .poll(async () => (await send(t.app, 'GET', '/api/v1/users', admin)).statusCode, { timeout: 5_000 })
      .toBe(200);
  });

  it('cannot suspend the platform tenant even in the database', async () => {
    await expect(
      t.identity.deps.db
        .updateTable('identity.tenants')
        .set({ status: 'suspended' })
        .where('slug', '=', 'platform')
        .execute(),
    ).rejects.toThrow();
  });
});
