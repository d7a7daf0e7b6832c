import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../../platform/db/index.ts';
import { startTestApp, type TestApp, testDatabaseKind, until } from '../../platform/testing/index.ts';
import { createTestTenant, login, post, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { auth, platformAdmin, send } from '../users/user-test-fixtures.ts';
import { sha256Hex } from './index.ts';

// A suspension is a pause, not a sign-out: a refresh while the tenant is suspended is refused
// (403 TENANT_SUSPENDED) without consuming the refresh token or revoking the session, so the
// same token works once the tenant is active again. A refresh racing the suspension must not
// revoke the session either.
let t: TestApp;
let root: Record<string, string>;

beforeAll(async () => {
  t = await startTestApp();
  root = (await platformAdmin(t)).headers;
});
afterAll(() => t.close());

const refresh = (refreshToken: string) => post(t.app, '/api/v1/auth/refresh', { refreshToken });
const setStatus = async (slug: string, status: 'active' | 'suspended') => {
  const answer = await send(t.app, 'PATCH', `/api/v1/tenants/${slug}`, root, { status });
  expect(answer.statusCode, answer.body).toBe(200);
};
const tokenRow = (token: string) =>
  withSystem(t.identity.deps.db, (trx) =>
    trx
      .selectFrom('identity.refresh_tokens')
      .select(['rotated_at', 'revoked_at'])
      .where('token_hash', '=', sha256Hex(token))
      .executeTakeFirstOrThrow(),
  );
const profileStatus = async (accessToken: string) =>
  (await send(t.app, 'GET', '/api/v1/users/profile', auth(accessToken))).statusCode;

describe('refreshing the session of a suspended tenant', () => {
  let shop: TestTenant;
  beforeAll(async () => {
    shop = await createTestTenant(t, 'paused-refresh');
  });

  it('is refused with 403 TENANT_SUSPENDED, leaving the token unused and the session live', async () => {
    const pair = await login(t.app, shop.slug, shop.adminEmail);
    await setStatus(shop.slug, 'suspended');
    for (let i = 0; i < 2; i++) {
      const refused = await refresh(pair.refreshToken);
      expect(refused.statusCode, refused.body).toBe(403);
      expect(refused.json().code).toBe('TENANT_SUSPENDED');
    }
    expect(await tokenRow(pair.refreshToken)).toEqual({ rotated_at: null, revoked_at: null });

    await setStatus(shop.slug, 'active');
    expect(await profileStatus(pair.accessToken)).toBe(200);
    const refreshed = await refresh(pair.refreshToken);
    expect(refreshed.statusCode, refreshed.body).toBe(200);
    expect(await profileStatus(refreshed.json().accessToken)).toBe(200);
  });
});

// PGlite runs one transaction at a time; PostgreSQL lets a suspension commit while a refresh is
// under way. A second connection holds the refresh token's row, so the refresh waits at its
// rotation; the suspension commits meanwhile; then the row is released.
describe.runIf(testDatabaseKind() === 'postgres')('a refresh racing a suspension of its tenant', () => {
  it('keeps the session: after the tenant is resumed, the session refreshes again', async () => {
    const shop = await createTestTenant(t, 'racing-refresh');
    const pair = await login(t.app, shop.slug, shop.adminEmail);
    const other = new pg.Client({ connectionString: t.databaseUrl });
    await other.connect();
    let racing: Awaited<ReturnType<typeof refresh>>;
    try {
      await other.query('begin');
      await other.query('select id from identity.refresh_tokens where token_hash = $1 for update', [
        sha256Hex(pair.refreshToken),
      ]);
      const underWay = refresh(pair.refreshToken);
      await until(async () => {
        const { rows } = await other.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity
           where wait_event_type = 'Lock' and pg_backend_pid() = any(pg_blocking_pids(pid))`,
        );
        return rows[0]!.n > 0;
      }, 'the refresh waiting on the token row');
      await setStatus(shop.slug, 'suspended');
      await other.query('rollback');
      racing = await underWay;
    } finally {
      await other.end();
    }
    // Either the refresh came first (a new pair) or the suspension did (refused, token kept):
    // never a revoked session.
    expect([200, 403], racing.body).toContain(racing.statusCode);
    const current = racing.statusCode === 200 ? racing.json().refreshToken : pair.refreshToken;

    await setStatus(shop.slug, 'active');
    const refreshed = await refresh(current);
    expect(refreshed.statusCode, refreshed.body).toBe(200);
    expect(await profileStatus(refreshed.json().accessToken)).toBe(200);
  }, 60_000);
});
