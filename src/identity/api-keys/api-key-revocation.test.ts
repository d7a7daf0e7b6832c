import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import {
  startSecondProcess,
  startTestApp,
  type TestApp,
  testDatabaseKind,
} from '../../platform/testing/index.ts';
import { createTestTenant, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { bearer, send } from '../users/user-test-fixtures.ts';

/**
 * Polls until check holds. The tests freeze Date, so the lookup cache (`API_KEY_CACHE_MS`) never
 * expires meanwhile: only the revocation's NOTIFY can make the key fail.
 */
const eventually = async (check: () => Promise<boolean>) => {
  for (let i = 0; i < 250 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
  expect(await check()).toBe(true);
};
const freezeDate = () => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(Date.now());
};

describe('API key revocations reach every process by NOTIFY', () => {
  let t: TestApp;
  let shop: TestTenant;
  let admin: Record<string, string>;
  beforeAll(async () => {
    t = await startTestApp();
    shop = await createTestTenant(t, 'key-revocation');
    admin = await bearer(t, shop.slug, shop.adminEmail);
  });
  afterAll(() => t.close());
  afterEach(() => {
    vi.useRealTimers();
  });

  const newKey = async () => {
    const created = await send(t.app, 'POST', '/api/v1/api-keys', admin, {
      name: 'integration',
      permissions: ['users:read'],
    });
    expect(created.statusCode).toBe(201);
    return created.json<{ id: string; key: string }>();
  };
  const refused = async (app: TestApp['app'], key: string) =>
    (await send(app, 'GET', '/api/v1/users', { 'x-api-key': key })).statusCode === 401;

  it('stops accepting a key revoked in SQL behind the API, without waiting for the cache', async () => {
    const { id, key } = await newKey();
    expect(await refused(t.app, key)).toBe(false);
    freezeDate();
    await withTenant(t.identity.deps.db, shop.id, (trx) =>
      sql`update identity.api_keys set revoked_at = now() where id = ${id}`.execute(trx),
    );
    await eventually(() => refused(t.app, key));
  });

  it.runIf(testDatabaseKind() === 'postgres')(
    'stops accepting, in another process, a key revoked through the first',
    async () => {
      const other = await startSecondProcess(t.databaseUrl!);
      try {
        const { id, key } = await newKey();
        expect(await refused(other.app, key)).toBe(false);
        freezeDate();
        expect((await send(t.app, 'DELETE', `/api/v1/api-keys/${id}`, admin)).statusCode).toBe(204);
        await eventually(() => refused(other.app, key));
      } finally {
        await other.close();
      }
    },
  );
});
