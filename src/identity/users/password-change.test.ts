import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import {
  createTestTenant,
  login,
  PASSWORD,
  post,
  type TestTenant,
  tryLogin,
} from '../auth/auth-test-fixtures.ts';
import { verifyPassword } from '../passwords.ts';
import { setPasswordByEmail } from './set-password.ts';
import { addUser, auth, send } from './user-test-fixtures.ts';

let t: TestApp;
let shop: TestTenant;

beforeAll(async () => {
  // Five failed sign-ins throttle an account (the default); the test app raises only per-IP limits.
  t = await startTestApp({ MERCATO_LOGIN_MAX_FAILURES: '3' });
  shop = await createTestTenant(t, 'pw-shop');
});
afterAll(() => t.close());

const NEW = 'a-brand-new-password-9';
const change = (headers: Record<string, string>, body: unknown) =>
  send(t.app, 'PUT', '/api/v1/users/password', headers, body);

describe('PUT /users/password', () => {
  it('changes the password; this session keeps working, the others are signed out', async () => {
    await addUser(t, shop.id, 'ada@pw-shop.test', 'customer');
    const here = await login(t.app, shop.slug, 'ada@pw-shop.test');
    const elsewhere = await login(t.app, shop.slug, 'ada@pw-shop.test');
    const changed = await change(auth(here.accessToken), { currentPassword: PASSWORD, newPassword: NEW });
    expect(changed.statusCode, changed.body).toBe(204);

    // This session: its access token and its refresh token still work.
    expect((await send(t.app, 'GET', '/api/v1/users/profile', auth(here.accessToken))).statusCode).toBe(200);
    const refreshed = await post(t.app, '/api/v1/auth/refresh', { refreshToken: here.refreshToken });
    expect(refreshed.statusCode, refreshed.body).toBe(200);

    // The other session: its refresh token is revoked and its access token refused at once.
    const stale = await post(t.app, '/api/v1/auth/refresh', { refreshToken: elsewhere.refreshToken });
    expect(stale.statusCode).toBe(401);
    const old = await send(t.app, 'GET', '/api/v1/users/profile', auth(elsewhere.accessToken));
    expect(old.statusCode).toBe(401);

    // The new password signs in, the old one does not.
    await expect(login(t.app, shop.slug, 'ada@pw-shop.test', NEW)).resolves.toHaveProperty('accessToken');
    expect((await tryLogin(t.app, shop.slug, 'ada@pw-shop.test', PASSWORD)).statusCode).toBe(401);
  });

  it('lets only one of two simultaneous changes from the same current password win, and keeps its password', async () => {
    // The owner changing a leaked password while the intruder changes it too, both at once.
    const email = 'race@pw-shop.test';
    await addUser(t, shop.id, email, 'customer');
    const [owner, intruder] = [await login(t.app, shop.slug, email), await login(t.app, shop.slug, email)];
    const wanted = ['the-owners-new-password-1', 'the-intruders-password-2'];
    const answers = await Promise.all(
      [owner, intruder].map((session, i) =>
        change(auth(session.accessToken), { currentPassword: PASSWORD, newPassword: wanted[i] }),
      ),
    );
    expect(answers.map((a) => a.statusCode).sort()).toEqual([204, 401]);
    const loser = answers.find((a) => a.statusCode === 401)!;
    expect(loser.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(loser.json()).toMatchObject({ code: 'INVALID_CREDENTIALS' });
    const winner = wanted[answers.findIndex((a) => a.statusCode === 204)]!;
    const stored = await withTenant(t.identity.deps.db, shop.id, (trx) =>
      trx
        .selectFrom('identity.users')
        .select('password_hash')
        .where('email', '=', email)
        .executeTakeFirstOrThrow(),
    );
    expect(await verifyPassword(stored.password_hash, winner)).toBe(true);
    await expect(login(t.app, shop.slug, email, winner)).resolves.toHaveProperty('accessToken');
  });

  it('answers 401 INVALID_CREDENTIALS to a wrong current password and changes nothing', async () => {
    await addUser(t, shop.id, 'bob@pw-shop.test', 'staff');
    const session = await login(t.app, shop.slug, 'bob@pw-shop.test');
    const wrong = await change(auth(session.accessToken), {
      currentPassword: 'not-my-password',
      newPassword: NEW,
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().code).toBe('INVALID_CREDENTIALS');
    // The session that asked is not signed out by a wrong guess, and the password is unchanged.
    expect((await send(t.app, 'GET', '/api/v1/users/profile', auth(session.accessToken))).statusCode).toBe(
      200,
    );
    await expect(login(t.app, shop.slug, 'bob@pw-shop.test')).resolves.toHaveProperty('accessToken');
  });

  it('counts wrong current passwords as failed sign-ins: the account is throttled', async () => {
    await addUser(t, shop.id, 'eve@pw-shop.test', 'customer');
    const { accessToken } = await login(t.app, shop.slug, 'eve@pw-shop.test');
    const guesses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await change(auth(accessToken), { currentPassword: `guess-${i}`, newPassword: NEW });
      guesses.push(response.statusCode);
    }
    expect(guesses).toEqual([401, 401, 401, 429]);
    expect((await tryLogin(t.app, shop.slug, 'eve@pw-shop.test', PASSWORD)).statusCode).toBe(429);
  });

  it('rejects a weak or missing new password and unknown fields, naming the field', async () => {
    await addUser(t, shop.id, 'cy@pw-shop.test', 'customer');
    const headers = auth((await login(t.app, shop.slug, 'cy@pw-shop.test')).accessToken);
    const short = await change(headers, { currentPassword: PASSWORD, newPassword: 'short' });
    expect(short.statusCode).toBe(400);
    expect(short.json().errors[0].pointer).toBe('/newPassword');
    const missing = await change(headers, { currentPassword: PASSWORD });
    expect(missing.statusCode).toBe(400);
    expect(JSON.stringify(missing.json().errors)).toContain('newPassword');
    const same = await change(headers, { currentPassword: PASSWORD, newPassword: PASSWORD });
    expect(same.statusCode).toBe(400);
    expect(same.json().errors[0].pointer).toBe('/newPassword');
    const extra = await change(headers, {
      currentPassword: PASSWORD,
      newPassword: NEW,
      userId: shop.adminId,
    });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().errors[0].pointer).toBe('/userId');
    await expect(login(t.app, shop.slug, 'cy@pw-shop.test')).resolves.toHaveProperty('accessToken');
  });

  it('has mercato users set-password count characters as the API does (code points, not UTF-16 units)', async () => {
    await addUser(t, shop.id, 'emoji@pw-shop.test', 'customer');
    const input = { tenant: shop.slug, email: 'emoji@pw-shop.test' };
    // Six characters (twelve UTF-16 units): the API refuses it as too short, so must the command.
    const six = '\u{1F511}'.repeat(6);
    const headers = auth((await login(t.app, shop.slug, input.email)).accessToken);
    expect((await change(headers, { currentPassword: PASSWORD, newPassword: six })).statusCode).toBe(400);
    await expect(setPasswordByEmail(t.identity.deps, { ...input, password: six })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
    });
    // A hundred characters (two hundred UTF-16 units): the API takes it, so must the command.
    const hundred = '\u{1F511}'.repeat(100);
    await expect(setPasswordByEmail(t.identity.deps, { ...input, password: hundred })).resolves.toMatchObject(
      {
        email: input.email,
      },
    );
    await expect(login(t.app, shop.slug, input.email, hundred)).resolves.toHaveProperty('accessToken');
  });

  it('is for signed-in users: 401 anonymous, 403 for an API key', async () => {
    const body = { currentPassword: PASSWORD, newPassword: NEW };
    expect((await change({}, body)).statusCode).toBe(401);
    const admin = auth((await login(t.app, shop.slug, shop.adminEmail)).accessToken);
    const created = await post(t.app, '/api/v1/api-keys', { name: 'k', permissions: ['users:read'] }, admin);
    const key = { 'x-api-key': created.json<{ key: string }>().key };
    expect((await change(key, body)).statusCode).toBe(403);
  });
});
