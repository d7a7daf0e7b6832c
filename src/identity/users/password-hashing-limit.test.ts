import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant, PASSWORD, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { addUser, auth, send } from './user-test-fixtures.ts';

// Each password change costs two argon2 hashes (19 MiB and tens of milliseconds of CPU each) and
// each staff account one: with only the authenticated budget (1,200 a minute per user), one
// customer or tenant admin could keep every core of the shared process hashing. They get the
// per-IP budget of logins and registrations (MERCATO_LOGIN_RATE_LIMIT a minute), counted apart.
let t: TestApp;
let shop: TestTenant;

beforeAll(async () => {
  t = await startTestApp({ MERCATO_LOGIN_RATE_LIMIT: '3' });
  shop = await createTestTenant(t, 'hash-shop');
});
afterAll(() => t.close());

/** An access token without a login (logins have their own per-IP budget of 3 here). */
async function headersOf(userId: string, role: 'customer' | 'admin') {
  const pair = await t.identity.deps.tokens.issue({ id: userId, role }, { id: shop.id, slug: shop.slug });
  return auth(pair.accessToken);
}

const OTHER = 'another-password-123';

describe('routes that hash a password have the per-IP budget of logins', () => {
  it('answers 429 RATE_LIMITED to password changes past the limit, from that IP only', async () => {
    const user = await addUser(t, shop.id, 'cpu@hash-shop.test', 'customer');
    const headers = await headersOf(user.id, 'customer');
    let current = PASSWORD;
    const change = (ip: string) => {
      const next = current === PASSWORD ? OTHER : PASSWORD;
      return t.app
        .inject({
          method: 'PUT',
          url: '/api/v1/users/password',
          headers,
          payload: { currentPassword: current, newPassword: next },
          remoteAddress: ip,
        })
        .then((response) => {
          if (response.statusCode === 204) current = next;
          return response;
        });
    };
    for (let i = 0; i < 3; i++) expect((await change('10.9.0.1')).statusCode).toBe(204);
    const limited = await change('10.9.0.1');
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(limited.json()).toMatchObject({ code: 'RATE_LIMITED' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect((await change('10.9.0.2')).statusCode).toBe(204);
  });

  it('answers 429 RATE_LIMITED to staff creations past the limit, and creates nothing more', async () => {
    const headers = await headersOf(shop.adminId, 'admin');
    const create = (n: number, ip: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/users',
        headers,
        payload: { email: `s${n}@hash-shop.test`, password: PASSWORD, name: 'S', role: 'staff' },
        remoteAddress: ip,
      });
    for (let i = 0; i < 3; i++) expect((await create(i, '10.9.1.1')).statusCode).toBe(201);
    const limited = await create(9, '10.9.1.1');
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: 'RATE_LIMITED' });
    const created = await withTenant(t.identity.deps.db, shop.id, (trx) =>
      trx.selectFrom('identity.users').select('email').where('email', '=', 's9@hash-shop.test').execute(),
    );
    expect(created).toEqual([]);
    expect((await create(10, '10.9.1.2')).statusCode).toBe(201);
    expect((await send(t.app, 'GET', '/api/v1/users?role=staff', headers)).json().items).toHaveLength(4);
  });
});
