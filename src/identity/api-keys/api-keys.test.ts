import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { withSystem } from '../../platform/db/index.ts';
import { buildApp } from '../../platform/http/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant, login, PASSWORD, post, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { createIdentity } from '../index.ts';
import { sha256Hex } from '../tokens/index.ts';
import { API_KEY_CACHE_MS } from './index.ts';

const KEYS = '/api/v1/api-keys';
type Created = {
  id: string;
  name: string;
  prefix: string;
  permissions: string[];
  namespaces: string[];
  key: string;
};

describe('API keys', () => {
  let t: TestApp;
  let shop: TestTenant;
  let other: TestTenant;
  let admin: Record<string, string>;
  let otherAdmin: Record<string, string>;

  const create = async (headers: Record<string, string>, body: Record<string, unknown>) => {
    const response = await post(t.app, KEYS, body, headers);
    expect(response.statusCode).toBe(201);
    return response.json<Created>();
  };
  const list = (headers: Record<string, string>) => t.app.inject({ url: KEYS, headers });
  const remove = (headers: Record<string, string>, id: string) =>
    t.app.inject({ method: 'DELETE', url: `${KEYS}/${id}`, headers });

  beforeAll(async () => {
    t = await startTestApp();
    shop = await createTestTenant(t, 'keys-a');
    other = await createTestTenant(t, 'keys-b');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    otherAdmin = {
      authorization: `Bearer ${(await login(t.app, other.slug, other.adminEmail)).accessToken}`,
    };
  });
  afterAll(() => t.close());

  it('lets a key granted users:read read its own tenant users, and nothing more', async () => {
    const reader = await create(admin, { name: 'crm', permissions: ['users:read'] });
    const unrelated = await create(admin, { name: 'misc', permissions: ['orders:read'] });
    const listed = await t.app.inject({ url: '/api/v1/users', headers: { 'x-api-key': reader.key } });
    expect(listed.statusCode).toBe(200);
    const emails = listed.json<{ items: { email: string }[] }>().items.map((u) => u.email);
    expect(emails).toContain(shop.adminEmail);
    expect(emails).not.toContain(other.adminEmail);
    const one = await t.app.inject({
      url: `/api/v1/users/${shop.adminId}`,
      headers: { 'x-api-key': reader.key },
    });
    expect(one.statusCode).toBe(200);
    const foreign = await t.app.inject({
      url: `/api/v1/users/${other.adminId}`,
      headers: { 'x-api-key': reader.key },
    });
    expect(foreign.statusCode).toBe(404);
    const denied = await t.app.inject({ url: '/api/v1/users', headers: { 'x-api-key': unrelated.key } });
    expect(denied.statusCode).toBe(403);
    const write = await post(
      t.app,
      '/api/v1/users',
      { email: 'x@keys.test', password: PASSWORD, name: 'X', role: 'staff' },
      { 'x-api-key': reader.key },
    );
    expect(write.statusCode).toBe(403);
  });

  it('creates a key shown once, stored only as its hash', async () => {
    const created = await create(admin, { name: 'warehouse', permissions: ['orders:read', 'inventory:*'] });
    expect(created.key).toMatch(/^mk_[A-Za-z0-9_-]{43}$/);
    expect(created).toMatchObject({ name: 'warehouse', prefix: created.key.slice(0, 10), namespaces: [] });
    expect(created.permissions).toEqual(['orders:read', 'inventory:*']);
    const row = await withSystem(t.identity.deps.db, (trx) =>
      trx.selectFrom('identity.api_keys').selectAll().where('id', '=', created.id).executeTakeFirstOrThrow(),
    );
    expect(row).toMatchObject({
      tenant_id: shop.id,
      key_hash: sha256Hex(created.key),
      created_by: shop.adminId,
    });
    expect(JSON.stringify(row)).not.toContain(created.key);
  });

  it('stores the WAL namespaces a key may use', async () => {
    const created = await create(admin, {
      name: 'wal',
      permissions: ['wal:write'],
      namespaces: ['orders.events'],
    });
    expect(created.namespaces).toEqual(['orders.events']);
  });

  it('authenticates a key sent as X-API-Key or as a Bearer token, as a machine of its tenant', async () => {
    const created = await create(admin, { name: 'machine', permissions: ['orders:read'] });
    await expect(t.identity.authenticate({ kind: 'apiKey', token: created.key })).resolves.toEqual({
      kind: 'apiKey',
      tenantId: shop.id,
      tenantSlug: shop.slug,
      apiKeyId: created.id,
      permissions: ['orders:read'],
    });
    // Authenticated (so not 401) but refused: managing keys and profiles takes a signed-in user.
    for (const headers of [{ 'x-api-key': created.key }, { authorization: `Bearer ${created.key}` }]) {
      const response = await t.app.inject({ url: KEYS, headers });
      expect(response.statusCode).toBe(403);
      expect(response.json()).toMatchObject({ code: 'FORBIDDEN' });
    }
    const used = await withSystem(t.identity.deps.db, (trx) =>
      trx
        .selectFrom('identity.api_keys')
        .select('last_used_at')
        .where('id', '=', created.id)
        .executeTakeFirstOrThrow(),
    );
    expect(used.last_used_at).not.toBeNull();
  });

  it('refuses an unknown key with 401', async () => {
    for (const headers of [{ 'x-api-key': 'mk_not-a-key' }, { authorization: 'Bearer mk_not-a-key' }]) {
      const response = await t.app.inject({ url: KEYS, headers });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ code: 'INVALID_TOKEN' });
    }
  });

  it('lists the tenant’s keys without their secrets', async () => {
    const created = await create(admin, { name: 'listed', permissions: [] });
    const response = await list(admin);
    expect(response.statusCode).toBe(200);
    const { items } = response.json<{ items: Record<string, unknown>[] }>();
    expect(items.map((k) => k['id'])).toContain(created.id);
    expect(response.body).not.toContain(created.key);
    expect(response.body).not.toContain(sha256Hex(created.key));
    for (const item of items) {
      expect(Object.keys(item).sort()).toEqual(
        ['createdAt', 'expiresAt', 'id', 'lastUsedAt', 'name', 'namespaces', 'permissions', 'prefix'].sort(),
      );
    }
    const theirs = (await list(otherAdmin)).json<{ items: { id: string }[] }>().items.map((k) => k.id);
    expect(theirs).not.toContain(created.id);
  });

  it('pages through keys newest first', async () => {
    const fresh = await createTestTenant(t, 'keys-pages');
    const headers = {
      authorization: `Bearer ${(await login(t.app, fresh.slug, fresh.adminEmail)).accessToken}`,
    };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await create(headers, { name: `k${i}`, permissions: [] })).id);
    const first = (await t.app.inject({ url: `${KEYS}?limit=2`, headers })).json();
    expect(first.items.map((k: { id: string }) => k.id)).toEqual([ids[2], ids[1]]);
    const second = (
      await t.app.inject({ url: `${KEYS}?limit=2&cursor=${first.nextCursor}`, headers })
    ).json();
    expect(second).toEqual({ items: [expect.objectContaining({ id: ids[0] })], nextCursor: null });
  });

  it('revokes a key: it stops authenticating and leaves the listing', async () => {
    const created = await create(admin, { name: 'doomed', permissions: ['orders:read'] });
    expect((await t.app.inject({ url: KEYS, headers: { 'x-api-key': created.key } })).statusCode).toBe(403);
    expect((await remove(admin, created.id)).statusCode).toBe(204);
    const refused = await t.app.inject({ url: KEYS, headers: { 'x-api-key': created.key } });
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toMatchObject({ code: 'INVALID_TOKEN' });
    const ids = (await list(admin)).json<{ items: { id: string }[] }>().items.map((k) => k.id);
    expect(ids).not.toContain(created.id);
    expect((await remove(admin, created.id)).statusCode).toBe(204);
  });

  it('makes a revocation done by another process effective once its short lookup cache expires', async () => {
    const created = await create(admin, { name: 'cached', permissions: [] });
    const elsewhere = await createIdentity(t.ctx); // another process: a cache of its own
    const credential = { kind: 'apiKey' as const, token: created.key };
    await expect(elsewhere.authenticate(credential)).resolves.toMatchObject({ apiKeyId: created.id });
    expect((await remove(admin, created.id)).statusCode).toBe(204);
    await expect(elsewhere.authenticate(credential)).resolves.toMatchObject({ apiKeyId: created.id });
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + API_KEY_CACHE_MS + 1);
      await expect(elsewhere.authenticate(credential)).rejects.toMatchObject({ code: 'INVALID_TOKEN' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('drops a key revoked by an id spelt in capitals from the revoking process at once', async () => {
    // A process that hears no notification: only its own revocation can drop the key it cached.
    const quiet = await createIdentity(t.ctx);
    const app = await buildApp(t.ctx, { authenticate: quiet.authenticate, modules: [quiet] });
    try {
      const created = await create(admin, { name: 'capitals', permissions: ['users:read'] });
      const headers = { 'x-api-key': created.key };
      expect((await app.inject({ url: '/api/v1/users', headers })).statusCode).toBe(200);
      const url = `${KEYS}/${created.id.toUpperCase()}`;
      expect((await app.inject({ method: 'DELETE', url, headers: admin })).statusCode).toBe(204);
      expect((await app.inject({ url: '/api/v1/users', headers })).statusCode).toBe(401);
    } finally {
      await app.close();
    }
  });

  it('answers 404 when deleting another tenant’s key or an unknown id, and leaves the key working', async () => {
    const created = await create(admin, { name: 'mine', permissions: [] });
    const theirs = await remove(otherAdmin, created.id);
    expect(theirs.statusCode).toBe(404);
    expect(theirs.json()).toMatchObject({ code: 'NOT_FOUND' });
    expect((await remove(admin, '01900000-0000-7000-8000-000000000000')).statusCode).toBe(404);
    await expect(t.identity.authenticate({ kind: 'apiKey', token: created.key })).resolves.toMatchObject({
      apiKeyId: created.id,
    });
  });

  it('lets only admins manage keys and validates the body', async () => {
    const customer = { tenant: shop.slug, email: 'shopper@example.com', password: PASSWORD, name: 'Shopper' };
    expect((await post(t.app, '/api/v1/auth/register', customer)).statusCode).toBe(201);
    const headers = {
      authorization: `Bearer ${(await login(t.app, shop.slug, customer.email)).accessToken}`,
    };
    expect((await post(t.app, KEYS, { name: 'x', permissions: [] }, headers)).statusCode).toBe(403);
    expect((await list(headers)).statusCode).toBe(403);
    expect((await t.app.inject({ url: KEYS })).statusCode).toBe(401);
    for (const bad of [
      { name: 'x', permissions: ['Orders:Read'] },
      { name: 'x', permissions: ['orders'] },
      { name: 'x', permissions: [], tenantId: other.id },
      { name: '', permissions: [] },
    ]) {
      expect((await post(t.app, KEYS, bad, admin)).statusCode).toBe(400);
    }
  });

  it('grants the permissions routes check, those of resources named with a hyphen too', async () => {
    // requireStaff('flash-sales:read') and ('flash-sales:write') are what the flash-sales routes ask of a key.
    const key = await create(admin, {
      name: 'flash stats',
      permissions: ['flash-sales:read', 'flash-sales:write'],
    });
    expect(key.permissions).toEqual(['flash-sales:read', 'flash-sales:write']);
    const principal = await t.identity.authenticate({ kind: 'apiKey', token: key.key });
    expect(principal).toMatchObject({
      kind: 'apiKey',
      permissions: ['flash-sales:read', 'flash-sales:write'],
    });
    for (const permissions of [['-sales:read'], ['flash-:read'], ['flash--sales:read']]) {
      expect((await post(t.app, KEYS, { name: 'x', permissions }, admin)).statusCode).toBe(400);
    }
  });
});
