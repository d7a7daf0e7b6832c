import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant, post, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { bearer, send } from '../users/user-test-fixtures.ts';
import { createApiKey, MAX_LIVE_API_KEYS_PER_TENANT } from './api-key-store.ts';

// A hostile tenant admin creating keys in a loop would grow identity.api_keys (and every key
// lookup's index) without bound: the live keys of a tenant are capped.
let t: TestApp;
let shop: TestTenant;
let admin: Record<string, string>;

beforeAll(async () => {
  t = await startTestApp();
  shop = await createTestTenant(t, 'key-cap');
  admin = await bearer(t, shop.slug, shop.adminEmail);
});
afterAll(() => t.close());

describe('POST /api-keys past the cap', () => {
  it('answers 409 CONFLICT once the tenant holds the most live keys, and again after a revocation frees one', async () => {
    await withTenant(t.identity.deps.db, shop.id, async (trx) => {
      for (let i = 1; i < MAX_LIVE_API_KEYS_PER_TENANT; i++)
        await createApiKey(trx, {
          tenantId: shop.id,
          name: `key ${i}`,
          permissions: [],
          namespaces: [],
          createdBy: shop.adminId,
        });
    });
    const create = () => post(t.app, '/api/v1/api-keys', { name: 'one more', permissions: [] }, admin);
    const last = await create();
    expect(last.statusCode, last.body).toBe(201);
    const refused = await create();
    expect(refused.statusCode, refused.body).toBe(409);
    expect(refused.json().code).toBe('CONFLICT');

    const revoked = await send(t.app, 'DELETE', `/api/v1/api-keys/${last.json().id}`, admin);
    expect(revoked.statusCode).toBe(204);
    expect((await create()).statusCode).toBe(201);
  });

  it('counts an expired key no more than a revoked one: its expiry frees a place', async () => {
    const create = () => post(t.app, '/api/v1/api-keys', { name: 'after expiry', permissions: [] }, admin);
    expect((await create()).statusCode).toBe(409);
    await withTenant(t.identity.deps.db, shop.id, (trx) =>
      sql`update identity.api_keys set expires_at = now() - interval '1 second'
        where id = (select id from identity.api_keys where revoked_at is null order by id limit 1)`.execute(
        trx,
      ),
    );
    expect((await create()).statusCode).toBe(201);
    expect((await create()).statusCode).toBe(409);
  });
});
