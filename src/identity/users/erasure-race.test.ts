import type { Transaction } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem, withTenant } from '../../platform/db/index.ts';
import { AppError } from '../../platform/http/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createAddress } from '../addresses/address-store.ts';
import { createApiKey } from '../api-keys/api-key-store.ts';
import { createTestTenant, type TestTenant } from '../auth/auth-test-fixtures.ts';
import type { IdentityTables } from '../tables.ts';
import { eraseUser } from './erase-user.ts';
import { changeRole } from './staff-store.ts';
import { updateProfile } from './user-store.ts';
import { addUser } from './user-test-fixtures.ts';

// A request authenticated a moment before its user was erased (or demoted) reaches the store
// after the erasure committed: it must write nothing that the erasure was meant to remove.
let t: TestApp;
let shop: TestTenant;

beforeAll(async () => {
  t = await startTestApp();
  shop = await createTestTenant(t, 'late-erase');
});
afterAll(() => t.close());

const inShop = <T>(fn: (trx: Transaction<IdentityTables>) => Promise<T>) =>
  withTenant(t.identity.deps.db, shop.id, fn);
const codeOf = (work: Promise<unknown>) =>
  work.then(
    (value) => value,
    (error: unknown) => (error instanceof AppError ? error.code : String(error)),
  );
const rowOf = (id: string) =>
  withSystem(t.identity.deps.db, (trx) =>
    trx.selectFrom('identity.users').selectAll().where('id', '=', id).executeTakeFirstOrThrow(),
  );

const ADDRESS = {
  type: 'SHIPPING' as const,
  recipient: 'Late Larry',
  line1: '1 Road',
  line2: null,
  city: 'London',
  region: null,
  postalCode: 'SW1A 1AA',
  country: 'GB',
  phone: null,
};

describe('writes that arrive after their user was erased', () => {
  it('add no address, no name or phone and no API key', async () => {
    const user = await addUser(t, shop.id, 'larry@late-erase.test', 'admin');
    await inShop((trx) => eraseUser(trx, shop.id, user.id));
    const owner = { tenantId: shop.id, userId: user.id };

    // Each write on its own: all are attempted, then what is left is checked.
    const address = await codeOf(inShop((trx) => createAddress(trx, owner, ADDRESS, true)));
    const profile = await codeOf(
      inShop((trx) => updateProfile(trx, shop.id, user.id, { name: 'Larry', phone: '+14155550123' })),
    );
    const key = await codeOf(
      inShop((trx) =>
        createApiKey(trx, {
          tenantId: shop.id,
          name: 'late',
          permissions: ['users:read'],
          namespaces: [],
          createdBy: user.id,
        }),
      ),
    );
    const [addresses, keys] = await withSystem(t.identity.deps.db, (trx) =>
      Promise.all([
        trx.selectFrom('identity.addresses').select('id').where('user_id', '=', user.id).execute(),
        trx.selectFrom('identity.api_keys').select('id').where('created_by', '=', user.id).execute(),
      ]),
    );
    expect(addresses).toEqual([]);
    expect(keys).toEqual([]);
    expect(await rowOf(user.id)).toMatchObject({ name: '', phone: null, status: 'erased' });
    expect([address, profile, key]).toEqual(['NOT_FOUND', undefined, 'INVALID_TOKEN']);
  });

  it('an admin demoted while creating an API key gets no key', async () => {
    const user = await addUser(t, shop.id, 'demoted@late-erase.test', 'admin');
    await inShop((trx) => changeRole(trx, shop.id, shop.adminId, user.id, 'staff'));
    const created = codeOf(
      inShop((trx) =>
        createApiKey(trx, {
          tenantId: shop.id,
          name: 'late',
          permissions: ['users:read'],
          namespaces: [],
          createdBy: user.id,
        }),
      ),
    );
    expect(await created).toBe('INVALID_TOKEN');
  });
});
