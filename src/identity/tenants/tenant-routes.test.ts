import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { login, PASSWORD } from '../auth/auth-test-fixtures.ts';
import { bearer, platformAdmin, send } from '../users/user-test-fixtures.ts';
import { createTenant } from './tenant-store.ts';

let t: TestApp;
let root: Record<string, string>;

beforeAll(async () => {
  t = await startTestApp();
  root = (await platformAdmin(t)).headers;
});
afterAll(() => t.close());

const newTenant = (slug: string) => ({
  slug,
  name: `Shop ${slug}`,
  adminEmail: `Owner@${slug}.test`,
  adminPassword: PASSWORD,
});

describe('tenants', () => {
  it('creates a tenant whose admin can sign in', async () => {
    const response = await send(t.app, 'POST', '/api/v1/tenants', root, newTenant('acme'));
    expect(response.statusCode).toBe(201);
    const body = response.json();
    expect(body).toMatchObject({ slug: 'acme', name: 'Shop acme', status: 'active' });
    expect(body.admin).toMatchObject({ email: 'owner@acme.test', role: 'admin' });
    expect(response.headers.location).toBe(`/api/v1/tenants/${body.id}`);
    await expect(login(t.app, 'acme', 'owner@acme.test')).resolves.toHaveProperty('accessToken');
  });

  it('answers 409 TENANT_SLUG_TAKEN for a slug in use', async () => {
    await send(t.app, 'POST', '/api/v1/tenants', root, newTenant('dupe'));
    const again = await send(t.app, 'POST', '/api/v1/tenants', root, newTenant('dupe'));
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('TENANT_SLUG_TAKEN');
  });

  it('rejects the reserved slug platform and malformed slugs, naming /slug', async () => {
    for (const slug of ['platform', 'Upper', '-dash', 'dash-', 'a_b', 'x'.repeat(64)]) {
      const response = await send(t.app, 'POST', '/api/v1/tenants', root, newTenant(slug));
      expect(response.statusCode, slug).toBe(400);
      expect(
        response.json().errors.map((e: { pointer: string }) => e.pointer),
        slug,
      ).toContain('/slug');
    }
  });

  it('rejects a short admin password and unknown fields', async () => {
    const short = await send(t.app, 'POST', '/api/v1/tenants', root, {
      ...newTenant('shortpw'),
      adminPassword: 'x',
    });
    expect(short.statusCode).toBe(400);
    const extra = await send(t.app, 'POST', '/api/v1/tenants', root, {
      ...newTenant('extra'),
      status: 'suspended',
    });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().errors[0].pointer).toBe('/status');
  });

  it('creates nothing when the admin cannot be created', async () => {
    await expect(
      createTenant(t.identity.deps.db, { ...newTenant('half'), adminEmail: 'x'.repeat(300) }),
    ).rejects.toThrow();
    const list = await send(t.app, 'GET', '/api/v1/tenants?limit=100', root);
    expect(list.json().items.map((x: { slug: string }) => x.slug)).not.toContain('half');
  });

  it('pages through tenants with an opaque cursor', async () => {
    for (const slug of ['page-a', 'page-b', 'page-c'])
      await send(t.app, 'POST', '/api/v1/tenants', root, newTenant(slug));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/api/v1/tenants?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await send(t.app, 'GET', url, root);
      expect(page.statusCode).toBe(200);
      const body = page.json();
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...body.items.map((x: { slug: string }) => x.slug));
      cursor = body.nextCursor;
    } while (cursor);
    expect(seen[0]).toBe('platform');
    expect(seen).toEqual(expect.arrayContaining(['page-a', 'page-b', 'page-c']));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('rejects a limit out of range and a forged cursor', async () => {
    expect((await send(t.app, 'GET', '/api/v1/tenants?limit=0', root)).statusCode).toBe(400);
    expect((await send(t.app, 'GET', '/api/v1/tenants?limit=101', root)).statusCode).toBe(400);
    const forged = await send(t.app, 'GET', '/api/v1/tenants?cursor=bm90LWEtdXVpZA', root);
    expect(forged.statusCode).toBe(400);
    expect(forged.json().errors[0]).toMatchObject({ in: 'query', pointer: '/cursor' });
  });

  it('reads one tenant, 404 when absent, 400 for a malformed id', async () => {
    const created = (await send(t.app, 'POST', '/api/v1/tenants', root, newTenant('one'))).json();
    const one = await send(t.app, 'GET', `/api/v1/tenants/${created.id}`, root);
    expect(one.json()).toMatchObject({ id: created.id, slug: 'one' });
    const absent = await send(t.app, 'GET', '/api/v1/tenants/01900000-0000-7000-8000-000000000000', root);
    expect(absent.statusCode).toBe(404);
    expect(absent.json().code).toBe('NOT_FOUND');
    expect((await send(t.app, 'GET', '/api/v1/tenants/nope', root)).statusCode).toBe(400);
  });

  it('is for platform admins only: 401 anonymous, 403 for a tenant admin', async () => {
    expect((await send(t.app, 'GET', '/api/v1/tenants', {})).statusCode).toBe(401);
    await send(t.app, 'POST', '/api/v1/tenants', root, newTenant('shop'));
    const shopAdmin = await bearer(t, 'shop', 'owner@shop.test');
    const list = await send(t.app, 'GET', '/api/v1/tenants', shopAdmin);
    expect(list.statusCode).toBe(403);
    const create = await send(t.app, 'POST', '/api/v1/tenants', shopAdmin, newTenant('sneaky'));
    expect(create.statusCode).toBe(403);
  });
});

describe('OpenAPI', () => {
  it('documents every tenants, users and addresses route with its tag and security', async () => {
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const expected: [string, string, string][] = [
      ['/api/v1/tenants', 'post', 'tenants'],
      ['/api/v1/tenants', 'get', 'tenants'],
      ['/api/v1/tenants/{id}', 'get', 'tenants'],
      ['/api/v1/tenants/{id}', 'patch', 'tenants'],
      ['/api/v1/users/password', 'put', 'users'],
      ['/api/v1/users/{id}', 'delete', 'users'],
      ['/api/v1/users/profile', 'get', 'users'],
      ['/api/v1/users/profile', 'put', 'users'],
      ['/api/v1/users', 'post', 'users'],
      ['/api/v1/users', 'get', 'users'],
      ['/api/v1/users/{id}', 'get', 'users'],
      ['/api/v1/users/{id}/role', 'put', 'users'],
      ['/api/v1/users/{id}/status', 'put', 'users'],
      ['/api/v1/users/addresses', 'post', 'addresses'],
      ['/api/v1/users/addresses', 'get', 'addresses'],
      ['/api/v1/users/addresses/{id}', 'get', 'addresses'],
      ['/api/v1/users/addresses/{id}', 'put', 'addresses'],
      ['/api/v1/users/addresses/{id}', 'delete', 'addresses'],
    ];
    for (const [path, method, tag] of expected) {
      const operation = doc.paths[path]?.[method];
      expect(operation, `${method} ${path}`).toBeDefined();
      expect(operation.tags).toEqual([tag]);
      expect(operation.summary).toEqual(expect.any(String));
      expect(operation.security).toEqual([{ bearerAuth: [] }, { apiKeyAuth: [] }]);
    }
  });
});
