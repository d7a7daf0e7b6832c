import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../../platform/db/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import {
  createTestTenant,
  login,
  PASSWORD,
  post,
  type TestTenant,
  tryLogin,
} from '../auth/auth-test-fixtures.ts';
import { addUser, auth, bearer, send } from './user-test-fixtures.ts';

let t: TestApp;
let shop: TestTenant;
let admin: Record<string, string>;

beforeAll(async () => {
  t = await startTestApp();
  shop = await createTestTenant(t, 'erase-shop');
  admin = await bearer(t, shop.slug, shop.adminEmail);
});
afterAll(() => t.close());

const erase = (id: string, headers = admin) => send(t.app, 'DELETE', `/api/v1/users/${id}`, headers);

/** The stored row, whatever its status (the API no longer shows an erased user). */
const rowOf = (id: string) =>
  withSystem(t.identity.deps.db, (trx) =>
    trx.selectFrom('identity.users').selectAll().where('id', '=', id).executeTakeFirstOrThrow(),
  );

describe('DELETE /users/{id}', () => {
  it('erases a user: personal data blanked, addresses gone, sessions and their API keys revoked', async () => {
    const ada = await addUser(t, shop.id, 'ada@erase-shop.test', 'admin');
    const session = await login(t.app, shop.slug, 'ada@erase-shop.test');
    const own = auth(session.accessToken);
    await send(t.app, 'PUT', '/api/v1/users/profile', own, { phone: '+14155550123' });
    const address = await post(
      t.app,
      '/api/v1/users/addresses',
      {
        type: 'SHIPPING',
        recipient: 'Ada',
        line1: '1 Road',
        city: 'London',
        postalCode: 'SW1A 1AA',
        country: 'GB',
      },
      { ...own, 'idempotency-key': 'ada-address-1' },
    );
    expect(address.statusCode, address.body).toBe(201);
    const key = await post(t.app, '/api/v1/api-keys', { name: 'ada-key', permissions: ['users:read'] }, own);
    const apiKey = { 'x-api-key': key.json<{ key: string }>().key };
    expect((await send(t.app, 'GET', '/api/v1/users', apiKey)).statusCode).toBe(200);

    const erased = await erase(ada.id);
    expect(erased.statusCode, erased.body).toBe(204);

    const row = await rowOf(ada.id);
    expect(row).toMatchObject({
      email: `erased+${ada.id}@invalid`,
      name: '',
      phone: null,
      password_hash: '',
      status: 'erased',
      role: 'admin',
    });
    const addresses = await withSystem(t.identity.deps.db, (trx) =>
      trx.selectFrom('identity.addresses').select('id').where('user_id', '=', ada.id).execute(),
    );
    expect(addresses).toEqual([]);
    // Nor is the address kept in the answer stored for its Idempotency-Key.
    const { rows: answers } = await sql`
      select key from platform.idempotency_keys where scope = ${`user:${ada.id}`}`.execute(
      t.identity.deps.db,
    );
    expect(answers).toEqual([]);

    // The old access token, its refresh token and the key it made are all refused.
    expect((await send(t.app, 'GET', '/api/v1/users/profile', own)).statusCode).toBe(401);
    const refresh = await post(t.app, '/api/v1/auth/refresh', { refreshToken: session.refreshToken });
    expect(refresh.statusCode).toBe(401);
    expect((await send(t.app, 'GET', '/api/v1/users', apiKey)).statusCode).toBe(401);
    expect((await tryLogin(t.app, shop.slug, 'ada@erase-shop.test', PASSWORD)).statusCode).toBe(401);
  });

  // The identity module has no audit table of its own: its trail is the user's row and what points at it.
  it('keeps the audit trail: the row (id, tenant, role, created_at), its sessions and its API keys stay, revoked', async () => {
    const grace = await addUser(t, shop.id, 'grace@erase-shop.test', 'admin');
    const session = await login(t.app, shop.slug, 'grace@erase-shop.test');
    const key = await post(
      t.app,
      '/api/v1/api-keys',
      { name: 'grace-key', permissions: ['users:read'] },
      auth(session.accessToken),
    );
    expect(key.statusCode, key.body).toBe(201);
    const before = await rowOf(grace.id);

    expect((await erase(grace.id)).statusCode).toBe(204);

    const after = await rowOf(grace.id);
    expect(after).toMatchObject({ id: grace.id, tenant_id: shop.id, role: 'admin', status: 'erased' });
    expect(after.created_at).toEqual(before.created_at);
    const trail = await withSystem(t.identity.deps.db, async (trx) => ({
      sessions: await trx
        .selectFrom('identity.refresh_tokens')
        .select('revoked_at')
        .where('user_id', '=', grace.id)
        .execute(),
      keys: await trx
        .selectFrom('identity.api_keys')
        .select(['name', 'revoked_at'])
        .where('created_by', '=', grace.id)
        .execute(),
    }));
    expect(trail.sessions.length).toBeGreaterThan(0);
    for (const s of trail.sessions) expect(s.revoked_at).toBeInstanceOf(Date);
    expect(trail.keys).toEqual([{ name: 'grace-key', revoked_at: expect.any(Date) }]);
  });

  it('reads the erased user as absent: 404 on read and on a second erase, left out of the list', async () => {
    const bob = await addUser(t, shop.id, 'bob@erase-shop.test', 'customer');
    expect((await erase(bob.id)).statusCode).toBe(204);
    expect((await send(t.app, 'GET', `/api/v1/users/${bob.id}`, admin)).statusCode).toBe(404);
    const second = await erase(bob.id);
    expect(second.statusCode).toBe(404);
    expect(second.json().code).toBe('NOT_FOUND');
    const status = await send(t.app, 'PUT', `/api/v1/users/${bob.id}/status`, admin, { status: 'active' });
    expect(status.statusCode).toBe(404);
    const list = await send(t.app, 'GET', '/api/v1/users?limit=100', admin);
    expect(list.json().items.map((u: { id: string }) => u.id)).not.toContain(bob.id);
    // The email is free again: the person may sign up anew.
    const signup = await post(t.app, '/api/v1/auth/register', {
      tenant: shop.slug,
      email: 'bob@erase-shop.test',
      password: PASSWORD,
      name: 'Bob Again',
    });
    expect(signup.statusCode, signup.body).toBe(201);
  });

  it('erases a user named by an id spelt in capitals (not a 500 from the lowercase email check)', async () => {
    const dave = await addUser(t, shop.id, 'dave@erase-shop.test', 'customer');
    const response = await erase(dave.id.toUpperCase());
    expect(response.statusCode, response.body).toBe(204);
    expect(await rowOf(dave.id)).toMatchObject({ status: 'erased', email: `erased+${dave.id}@invalid` });
  });

  it("answers 404 for another tenant's user and leaves it untouched", async () => {
    const other = await createTestTenant(t, 'erase-other');
    const response = await erase(other.adminId);
    expect(response.statusCode).toBe(404);
    expect((await rowOf(other.adminId)).status).toBe('active');
  });

  it('keeps the last active admin (409), and lets an admin erase themself when another remains', async () => {
    const solo = await createTestTenant(t, 'erase-solo');
    const soloAdmin = await bearer(t, solo.slug, solo.adminEmail);
    const last = await erase(solo.adminId, soloAdmin);
    expect(last.statusCode).toBe(409);
    expect(last.json().code).toBe('CONFLICT');
    await addUser(t, solo.id, 'second@erase-solo.test', 'admin');
    expect((await erase(solo.adminId, soloAdmin)).statusCode).toBe(204);
    expect((await rowOf(solo.adminId)).status).toBe('erased');
  });

  it('is for tenant admins: 403 for staff and for API keys, 401 anonymous', async () => {
    const carol = await addUser(t, shop.id, 'carol@erase-shop.test', 'staff');
    const staff = await bearer(t, shop.slug, 'carol@erase-shop.test');
    expect((await erase(shop.adminId, staff)).statusCode).toBe(403);
    const key = await post(t.app, '/api/v1/api-keys', { name: 'reader', permissions: ['users:read'] }, admin);
    expect((await erase(carol.id, { 'x-api-key': key.json<{ key: string }>().key })).statusCode).toBe(403);
    expect((await erase(carol.id, {})).statusCode).toBe(401);
    expect((await rowOf(carol.id)).status).toBe('active');
  });
});
