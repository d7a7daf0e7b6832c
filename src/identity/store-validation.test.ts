import type { Transaction } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import { startTestApp, type TestApp } from '../platform/testing/index.ts';
import { createTestTenant, PASSWORD, type TestTenant } from './auth/auth-test-fixtures.ts';
import { hashPassword } from './passwords.ts';
import type { IdentityTables } from './tables.ts';
import { createTenant, updateTenant } from './tenants/index.ts';
import { changeRole, changeStatus } from './users/staff-store.ts';
import { createUser, type NewUser, updateProfile } from './users/user-store.ts';
import { addUser, fixturePasswordHash } from './users/user-test-fixtures.ts';

// The stores check what they are handed themselves: a caller that is not a route (the demo
// seeding, the CLI, another module) gets the 400 VALIDATION_FAILED a route's schema would give.
let t: TestApp;
let shop: TestTenant;

beforeAll(async () => {
  t = await startTestApp();
  shop = await createTestTenant(t, 'checked-shop');
});
afterAll(() => t.close());

/** The pointers of the VALIDATION_FAILED that work fails with. */
async function refusedFields(work: Promise<unknown>): Promise<string[]> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  const appError = error as AppError;
  expect(appError.code, appError.message).toBe('VALIDATION_FAILED');
  return (appError.extras.errors ?? []).map((e) => e.pointer);
}

const countRows = (table: 'identity.users' | 'identity.tenants', column: 'email' | 'slug', like: string) =>
  withSystem(t.identity.deps.db, async (trx) => {
    const rows = await trx.selectFrom(table).select(column).where(column, 'like', like).execute();
    return rows.length;
  });

describe('the identity stores check their input themselves', () => {
  it('createUser refuses a bad email, name, role, phone or password hash, naming each field', async () => {
    const passwordHash = await fixturePasswordHash();
    const good: NewUser = {
      tenantId: shop.id,
      email: 'bad-input@checked-shop.test',
      passwordHash,
      name: 'Bad',
      role: 'staff',
    };
    const create = (patch: Record<string, unknown>) =>
      withTenant(t.identity.deps.db, shop.id, (trx) => createUser(trx, { ...good, ...patch } as NewUser));
    expect(await refusedFields(create({ email: 'bad-input' }))).toEqual(['/email']);
    // A confusable (Cyrillic а) or differently normalised address is not an email the API takes.
    expect(await refusedFields(create({ email: 'bаd-input@checked-shop.test' }))).toEqual(['/email']);
    expect(await refusedFields(create({ email: `${'x'.repeat(250)}@checked-shop.test` }))).toEqual([
      '/email',
    ]);
    expect(await refusedFields(create({ name: '' }))).toEqual(['/name']);
    expect(await refusedFields(create({ name: 'Nul\u0000l' }))).toEqual(['/name']);
    expect(await refusedFields(create({ role: 'root' }))).toEqual(['/role']);
    expect(await refusedFields(create({ phone: '12345' }))).toEqual(['/phone']);
    expect(await refusedFields(create({ passwordHash: '' }))).toEqual(['/passwordHash']);
    expect(await refusedFields(create({ passwordHash: PASSWORD }))).toEqual(['/passwordHash']);
    expect(await refusedFields(create({ email: 'x', name: '', role: 'root' }))).toEqual([
      '/email',
      '/name',
      '/role',
    ]);
    expect(await countRows('identity.users', 'email', 'bad-input%')).toBe(0);
    // The same input, well formed, is taken.
    await expect(create({ email: 'Bad-Input@checked-shop.test' })).resolves.toMatchObject({
      email: 'bad-input@checked-shop.test',
    });
  });

  it('createTenant refuses a bad or reserved slug, name, admin email, password or name, creating nothing', async () => {
    const good = {
      slug: 'bad-tenant',
      name: 'Bad',
      adminEmail: 'owner@bad-tenant.test',
      adminPassword: PASSWORD,
    };
    const create = (patch: Record<string, unknown>) =>
      createTenant(t.identity.deps.db, { ...good, ...patch } as typeof good, t.identity.deps.onTenantCreated);
    expect(await refusedFields(create({ slug: 'Bad Tenant' }))).toEqual(['/slug']);
    expect(await refusedFields(create({ slug: 'BAD-TENANT' }))).toEqual(['/slug']);
    expect(await refusedFields(create({ slug: 'platform' }))).toEqual(['/slug']);
    expect(await refusedFields(create({ name: 'x'.repeat(201) }))).toEqual(['/name']);
    expect(await refusedFields(create({ adminEmail: 'owner' }))).toEqual(['/adminEmail']);
    expect(await refusedFields(create({ adminPassword: 'short' }))).toEqual(['/adminPassword']);
    expect(await refusedFields(create({ adminPassword: `${'x'.repeat(12)}\ud800` }))).toEqual([
      '/adminPassword',
    ]);
    expect(await refusedFields(create({ adminName: '' }))).toEqual(['/adminName']);
    expect(await countRows('identity.tenants', 'slug', 'bad-tenant%')).toBe(0);
    expect(await countRows('identity.users', 'email', '%@bad-tenant.test')).toBe(0);
  });

  it('hashPassword refuses a password the API would, so no store is handed the hash of one', async () => {
    expect(await refusedFields(hashPassword('short'))).toEqual(['/password']);
    expect(await refusedFields(hashPassword('x'.repeat(129), '/newPassword'))).toEqual(['/newPassword']);
  });

  it('changeRole, changeStatus, updateProfile and updateTenant refuse what their routes refuse', async () => {
    const db = t.identity.deps.db;
    const user = await addUser(t, shop.id, 'changed@checked-shop.test', 'staff');
    const inShop = <T>(fn: (trx: Transaction<IdentityTables>) => Promise<T>) => withTenant(db, shop.id, fn);
    expect(
      await refusedFields(inShop((trx) => changeRole(trx, shop.id, shop.adminId, user.id, 'root' as never))),
    ).toEqual(['/role']);
    // Erasure is eraseUser's: a status of 'erased' here would keep the personal data it blanks.
    expect(
      await refusedFields(inShop((trx) => changeStatus(trx, shop.id, shop.adminId, user.id, 'erased'))),
    ).toEqual(['/status']);
    expect(
      await refusedFields(inShop((trx) => updateProfile(trx, shop.id, user.id, { name: '\u0000' }))),
    ).toEqual(['/name']);
    expect(
      await refusedFields(inShop((trx) => updateProfile(trx, shop.id, user.id, { phone: 'call me' }))),
    ).toEqual(['/phone']);
    expect(await refusedFields(updateTenant(db, shop.slug, { name: '' }))).toEqual(['/name']);
    expect(await refusedFields(updateTenant(db, shop.slug, { status: 'deleted' as never }))).toEqual([
      '/status',
    ]);
    const row = await inShop((trx) =>
      trx.selectFrom('identity.users').selectAll().where('id', '=', user.id).executeTakeFirstOrThrow(),
    );
    expect(row).toMatchObject({ role: 'staff', status: 'active', name: 'changed', phone: null });
  });
});
