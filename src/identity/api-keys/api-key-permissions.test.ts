import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant, login, post, type TestTenant } from '../auth/auth-test-fixtures.ts';

const KEYS = '/api/v1/api-keys';

describe('API key permissions', () => {
  let t: TestApp;
  let shop: TestTenant;
  let admin: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp();
    shop = await createTestTenant(t, 'key-perms');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
  });
  afterAll(() => t.close());

  it('lets a key granted resource:* do what each of the resource’s permissions allows', async () => {
    const created = await post(t.app, KEYS, { name: 'all users', permissions: ['users:*'] }, admin);
    expect(created.statusCode).toBe(201);
    const { key } = created.json<{ key: string }>();
    const listed = await t.app.inject({ url: '/api/v1/users', headers: { 'x-api-key': key } });
    expect(listed.statusCode).toBe(200);
    // Another resource's wildcard grants nothing here.
    const other = await post(t.app, KEYS, { name: 'orders only', permissions: ['orders:*'] }, admin);
    const denied = await t.app.inject({
      url: '/api/v1/users',
      headers: { 'x-api-key': other.json<{ key: string }>().key },
    });
    expect(denied.statusCode).toBe(403);
  });

  it('refuses, naming each, permissions no route checks rather than storing a key that can do nothing', async () => {
    const refused = await post(
      t.app,
      KEYS,
      { name: 'typos', permissions: ['users:read', 'catalog:write', 'orders:delete', 'nothing:*'] },
      admin,
    );
    expect(refused.statusCode).toBe(400);
    expect(refused.headers['content-type']).toContain('application/problem+json');
    const problem = refused.json<{ code: string; errors: { pointer: string; message: string }[] }>();
    expect(problem.code).toBe('VALIDATION_FAILED');
    expect(problem.errors.map((e) => e.pointer)).toEqual([
      '/permissions/1',
      '/permissions/2',
      '/permissions/3',
    ]);
    expect(problem.errors[0]!.message).toContain('catalog:write');
    expect(problem.errors[0]!.message).toContain('users:read');
    const listed = await t.app.inject({ url: KEYS, headers: admin });
    expect(listed.json<{ items: { name: string }[] }>().items.map((k) => k.name)).not.toContain('typos');
  });
});

describe('API key expiry', () => {
  let t: TestApp;
  let admin: Record<string, string>;
  beforeAll(async () => {
    t = await startTestApp();
    const shop = await createTestTenant(t, 'key-expiry');
    admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
  });
  afterAll(() => t.close());

  it('refuses a date-time whose fraction of a second PostgreSQL cannot read with 400, not 500', async () => {
    const refused = await post(
      t.app,
      KEYS,
      { name: 'long', permissions: [], expiresAt: `2030-01-01T00:00:00.${'1'.repeat(200)}Z` },
      admin,
    );
    expect(refused.statusCode, refused.body).toBe(400);
    expect(refused.json<{ code: string }>().code).toBe('VALIDATION_FAILED');
    // Nanoseconds still are a time.
    const nanos = await post(
      t.app,
      KEYS,
      { name: 'nanos', permissions: [], expiresAt: '2030-01-01T00:00:00.123456789+02:00' },
      admin,
    );
    expect(nanos.statusCode, nanos.body).toBe(201);
  });
});
