import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../../platform/db/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import {
  createTestTenant,
  getWith,
  login,
  post,
  type TestTenant,
  type TokenPairBody,
} from '../auth/auth-test-fixtures.ts';
import { purgeRefreshTokens, randomToken, sha256Hex, startRefreshTokenPurge } from './index.ts';
import { insertRefreshToken, REFRESH_TOKEN_PREFIX } from './refresh-tokens.ts';

describe('refresh tokens', () => {
  let t: TestApp;
  let shop: TestTenant;
  const refresh = (refreshToken: string) => post(t.app, '/api/v1/auth/refresh', { refreshToken });
  const logout = (refreshToken: string) => post(t.app, '/api/v1/auth/logout', { refreshToken });
  const validate = async (token: string) => (await post(t.app, '/api/v1/auth/validate', { token })).json();
  const profile = (accessToken: string) =>
    getWith(t.app, '/api/v1/users/profile', { authorization: `Bearer ${accessToken}` });
  const signIn = () => login(t.app, shop.slug, shop.adminEmail);
  const tokenRow = (token: string) =>
    withSystem(t.identity.deps.db, (trx) =>
      trx
        .selectFrom('identity.refresh_tokens')
        .selectAll()
        .where('token_hash', '=', sha256Hex(token))
        .executeTakeFirst(),
    );

  beforeAll(async () => {
    t = await startTestApp();
    shop = await createTestTenant(t, 'refresh-shop');
  });
  afterAll(() => t.close());

  it('stores only the hash of a refresh token', async () => {
    const pair = await signIn();
    expect(pair.refreshToken).toMatch(/^rt_[A-Za-z0-9_-]{43}$/);
    const row = await tokenRow(pair.refreshToken);
    expect(row).toMatchObject({
      token_hash: sha256Hex(pair.refreshToken),
      user_id: shop.adminId,
      tenant_id: shop.id,
    });
    expect(JSON.stringify(row)).not.toContain(pair.refreshToken);
  });

  it('rotates: the new pair works and carries the same session id', async () => {
    const first = await signIn();
    const response = await refresh(first.refreshToken);
    expect(response.statusCode).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
    const second = response.json<TokenPairBody>();
    expect(second).toMatchObject({ tokenType: 'Bearer', expiresIn: 900 });
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect((await profile(second.accessToken)).statusCode).toBe(200);
    expect((await validate(second.accessToken)).sessionId).toBe(
      (await validate(first.accessToken)).sessionId,
    );
    expect((await refresh(second.refreshToken)).statusCode).toBe(200);
  });

  it('refuses, within the grace too, a refresh token whose session was logged out', async () => {
    const first = await signIn();
    const second = (await refresh(first.refreshToken)).json<TokenPairBody>();
    expect((await logout(second.refreshToken)).statusCode).toBe(204);
    expect((await refresh(first.refreshToken)).json()).toMatchObject({ code: 'REFRESH_TOKEN_REUSED' });
  });

  it('ends the session on logout: refresh fails and validate says inactive; logout is idempotent', async () => {
    const pair = await signIn();
    expect((await validate(pair.accessToken)).active).toBe(true);
    expect((await logout(pair.refreshToken)).statusCode).toBe(204);
    expect((await refresh(pair.refreshToken)).statusCode).toBe(401);
    expect(await validate(pair.accessToken)).toEqual({ active: false });
    expect((await logout(pair.refreshToken)).statusCode).toBe(204);
    expect((await logout('rt_never-issued')).statusCode).toBe(204);
  });

  it('refuses the access token of a logged-out session at once (401 INVALID_TOKEN)', async () => {
    const pair = await signIn();
    expect((await profile(pair.accessToken)).statusCode).toBe(200);
    expect((await logout(pair.refreshToken)).statusCode).toBe(204);
    const after = await profile(pair.accessToken);
    expect(after.statusCode).toBe(401);
    expect(after.json()).toMatchObject({ code: 'INVALID_TOKEN' });
  });

  it('refuses an expired refresh token with INVALID_TOKEN', async () => {
    const pair = await signIn();
    await withSystem(t.identity.deps.db, (trx) =>
      trx
        .updateTable('identity.refresh_tokens')
        .set({ expires_at: sql<Date>`now() - interval '1 second'` })
        .where('token_hash', '=', sha256Hex(pair.refreshToken))
        .execute(),
    );
    const response = await refresh(pair.refreshToken);
    expect(response.statusCode).toBe(401);
    expect(response.json()).toMatchObject({ code: 'INVALID_TOKEN' });
  });

  it('refuses unknown refresh tokens and unknown body fields', async () => {
    expect((await refresh('rt_never-issued')).json()).toMatchObject({ status: 401, code: 'INVALID_TOKEN' });
    const extra = await post(t.app, '/api/v1/auth/refresh', { refreshToken: 'rt_x', tenantId: shop.id });
    expect(extra.statusCode).toBe(400);
  });

  it('stops refreshing, and reports inactive, the session of a user who was disabled', async () => {
    const user = await createTestTenant(t, 'refresh-disabled');
    const pair = await login(t.app, user.slug, user.adminEmail);
    await withSystem(t.identity.deps.db, (trx) =>
      trx.updateTable('identity.users').set({ status: 'disabled' }).where('id', '=', user.adminId).execute(),
    );
    expect(await validate(pair.accessToken)).toEqual({ active: false });
    expect((await refresh(pair.refreshToken)).json()).toMatchObject({ status: 401, code: 'INVALID_TOKEN' });
    expect(await validate(pair.accessToken)).toEqual({ active: false });
  });

  it('introspects a live access token RFC 7662 style and says inactive for anything else', async () => {
    const pair = await signIn();
    const body = await validate(pair.accessToken);
    expect(body).toMatchObject({
      active: true,
      sub: shop.adminId,
      tenantId: shop.id,
      tenant: shop.slug,
      role: 'admin',
    });
    expect(body.exp - body.iat).toBe(900);
    expect(body.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await validate('garbage')).toEqual({ active: false });
    expect(await validate(pair.refreshToken)).toEqual({ active: false });
  });

  it('purges expired tokens and those revoked or rotated over a day ago, keeping the rest', async () => {
    const db = t.identity.deps.db;
    const pairs: TokenPairBody[] = [];
    for (let i = 0; i < 5; i++) pairs.push(await signIn());
    const [expired, revokedLongAgo, rotatedLongAgo, rotatedRecently, live] = pairs.map((p) =>
      sha256Hex(p.refreshToken),
    );
    await withSystem(db, async (trx) => {
      const set = (hash: string | undefined, values: Record<string, unknown>) =>
        trx.updateTable('identity.refresh_tokens').set(values).where('token_hash', '=', hash!).execute();
      await set(expired, { expires_at: sql`now() - interval '1 minute'` });
      await set(revokedLongAgo, { revoked_at: sql`now() - interval '25 hours'` });
      await set(rotatedLongAgo, { rotated_at: sql`now() - interval '25 hours'` });
      await set(rotatedRecently, { rotated_at: sql`now() - interval '1 hour'` });
    });
    await purgeRefreshTokens(db);
    const left = await withSystem(db, (trx) =>
      trx
        .selectFrom('identity.refresh_tokens')
        .select('token_hash')
        .where('token_hash', 'in', [expired!, revokedLongAgo!, rotatedLongAgo!, rotatedRecently!, live!])
        .execute(),
    );
    expect(left.map((r) => r.token_hash).sort()).toEqual([rotatedRecently, live].sort());
  });

  it('keeps a logged-out session dead after the purge, even with a token that escaped the logout', async () => {
    const db = t.identity.deps.db;
    const pair = await signIn();
    const original = await tokenRow(pair.refreshToken);
    expect((await logout(pair.refreshToken)).statusCode).toBe(204);
    // A refresh of the same token committed while the logout's UPDATE waited for its row lock:
    // under READ COMMITTED that UPDATE does not see the successor inserted meanwhile, so the
    // successor stays unrevoked in a family that holds a revoked token.
    const escaped = randomToken(REFRESH_TOKEN_PREFIX);
    await withSystem(db, (trx) =>
      insertRefreshToken(trx, {
        tenantId: shop.id,
        userId: shop.adminId,
        familyId: original!.family_id,
        hash: sha256Hex(escaped),
        ttlSeconds: 3600,
      }),
    );
    expect(await validate(pair.accessToken)).toEqual({ active: false });
    // The logout was over a day ago: the purge may drop its revoked rows, not the session's death.
    await withSystem(db, (trx) =>
      trx
        .updateTable('identity.refresh_tokens')
        .set({ revoked_at: sql`now() - interval '25 hours'` })
        .where('family_id', '=', original!.family_id)
        .where('revoked_at', 'is not', null)
        .execute(),
    );
    await purgeRefreshTokens(db);
    const response = await refresh(escaped);
    expect(response.statusCode, response.body).toBe(401);
    expect(await validate(pair.accessToken)).toEqual({ active: false });
  });

  it('runs the purge on its interval until stopped', async () => {
    const timed = await startTestApp({ MERCATO_PURGE_INTERVAL: '1' });
    try {
      const other = await createTestTenant(timed, 'purge-shop');
      const pair = await login(timed.app, other.slug, other.adminEmail);
      await withSystem(timed.identity.deps.db, (trx) =>
        trx
          .updateTable('identity.refresh_tokens')
          .set({ expires_at: sql`now() - interval '1 minute'` })
          .execute(),
      );
      const stop = startRefreshTokenPurge(timed.identity.deps);
      const deadline = Date.now() + 10_000;
      while ((await findHash(timed, pair.refreshToken)) && Date.now() < deadline) await sleep(200);
      stop();
      expect(await findHash(timed, pair.refreshToken)).toBeUndefined();
    } finally {
      await timed.close();
    }
  });
});

describe('refresh tokens without a reuse grace', () => {
  let t: TestApp;
  let shop: TestTenant;
  beforeAll(async () => {
    t = await startTestApp({ MERCATO_REFRESH_REUSE_GRACE_SECONDS: '0' });
    shop = await createTestTenant(t, 'no-grace');
  });
  afterAll(() => t.close());

  it('lets exactly one of two simultaneous refreshes of the same token win', async () => {
    const pair = await login(t.app, shop.slug, shop.adminEmail);
    const refresh = () => post(t.app, '/api/v1/auth/refresh', { refreshToken: pair.refreshToken });
    const answers = await Promise.all([refresh(), refresh()]);
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 401]);
    expect(answers.find((a) => a.statusCode === 401)!.json()).toMatchObject({ code: 'REFRESH_TOKEN_REUSED' });
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const findHash = (t: TestApp, token: string) =>
  withSystem(t.identity.deps.db, (trx) =>
    trx
      .selectFrom('identity.refresh_tokens')
      .select('id')
      .where('token_hash', '=', sha256Hex(token))
      .executeTakeFirst(),
  );
