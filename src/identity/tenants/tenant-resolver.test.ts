import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../../platform/db/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant } from '../auth/auth-test-fixtures.ts';
import { createTenantResolver } from './tenant-resolver.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t.close());

describe('the storefront tenant resolver', () => {
  it('keeps the stores it found when anonymous callers send more unknown slugs than it holds', async () => {
    const shop = await createTestTenant(t, 'resolver-kept');
    const resolve = createTenantResolver(t.identity.deps.db, t.identity.deps.tenantStatus, { maxEntries: 4 });
    expect(await resolve('resolver-kept')).toBe(shop.id);
    for (let i = 0; i < 10; i++) expect(await resolve(`resolver-missing-${i}`)).toBeUndefined();
    // The slug is moved in the database: only a resolver that still holds the store answers it.
    await withSystem(t.identity.deps.db, (trx) =>
      sql`update identity.tenants set slug = 'resolver-moved' where id = ${shop.id}`.execute(trx),
    );
    expect(await resolve('resolver-kept')).toBe(shop.id);
  });
});
