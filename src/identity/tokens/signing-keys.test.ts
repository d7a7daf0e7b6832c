import { decodeProtectedHeader } from 'jose';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../../platform/db/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant, login } from '../auth/auth-test-fixtures.ts';
import type { IdentityTables } from '../tables.ts';
import { createTokenService } from './index.ts';

describe('signing keys kept in the database', () => {
  let t: TestApp;
  let db: Kysely<IdentityTables>;
  const keyRows = () =>
    withSystem(db, (trx) => trx.selectFrom('platform.signing_keys').select(['kid', 'retired_at']).execute());

  beforeAll(async () => {
    t = await startTestApp();
    db = t.identity.deps.db;
  });
  afterAll(() => t.close());

  it('generates one key on first start and signs with it', async () => {
    const rows = await keyRows();
    expect(rows).toHaveLength(1);
    const shop = await createTestTenant(t, 'keys-shop');
    const pair = await login(t.app, shop.slug, shop.adminEmail);
    expect(decodeProtectedHeader(pair.accessToken)).toMatchObject({
      alg: 'EdDSA',
      typ: 'at+jwt',
      kid: rows[0]!.kid,
    });
  });

  it('lets processes starting together on an empty table agree on a single key', async () => {
    await withSystem(db, (trx) => trx.deleteFrom('platform.signing_keys').execute());
    const services = await Promise.all([1, 2, 3, 4].map(() => createTokenService(t.ctx, db)));
    const kids = new Set(
      services.map((s) =>
        s
          .jwks()
          .keys.map((k) => k.kid)
          .join(),
      ),
    );
    expect(kids.size).toBe(1);
    expect(await keyRows()).toHaveLength(1);
  });

  it('lets a second process verify the tokens the first one signed', async () => {
    const shop = await createTestTenant(t, 'keys-shop-2');
    const other = await createTokenService(t.ctx, db);
    const pair = await other.issue({ id: shop.adminId, role: 'admin' }, { id: shop.id, slug: shop.slug });
    const again = await createTokenService(t.ctx, db);
    await expect(again.authenticate(pair.accessToken)).resolves.toMatchObject({ userId: shop.adminId });
  });

  it('stops verifying with a retired key after a restart and publishes only live keys', async () => {
    const before = await createTokenService(t.ctx, db);
    const shop = await createTestTenant(t, 'keys-shop-3');
    const pair = await before.issue({ id: shop.adminId, role: 'admin' }, { id: shop.id, slug: shop.slug });
    await withSystem(db, (trx) =>
      trx.updateTable('platform.signing_keys').set({ retired_at: new Date() }).execute(),
    );
    const after = await createTokenService(t.ctx, db);
    expect(after.jwks().keys.map((k) => k.kid)).not.toContain(decodeProtectedHeader(pair.accessToken).kid);
    await expect(after.authenticate(pair.accessToken)).rejects.toMatchObject({ code: 'INVALID_TOKEN' });
  });
});
