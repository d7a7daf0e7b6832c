import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem, withTenant } from '../../platform/db/index.ts';
import { AppError } from '../../platform/http/index.ts';
import { startTestApp, type TestApp, testDatabaseKind } from '../../platform/testing/index.ts';
import { hashPassword } from '../passwords.ts';
import { changePassword } from '../users/set-password.ts';
import { changeStatus } from '../users/staff-store.ts';
import { findUserByEmail } from '../users/user-store.ts';
import { addUser } from '../users/user-test-fixtures.ts';
import { createTestTenant, type TestTenant } from './auth-test-fixtures.ts';

// A sign-in reads the user, checks the password (argon2: tens of milliseconds), then starts a
// session. A password change, a disabling or an erasure that commits in between must not leave
// the sign-in with a session: someone who knew the old password could otherwise keep signing in
// in a loop and hold a session past the change that was meant to lock them out.
let t: TestApp;
let shop: TestTenant;

beforeAll(async () => {
  t = await startTestApp();
  shop = await createTestTenant(t, 'race-shop');
});
afterAll(() => t.close());

const tenant = () => ({ id: shop.id, slug: shop.slug });
/** What signIn holds once it has checked the password: the user's credentials as read before. */
const credentialsOf = async (email: string) =>
  (await withTenant(t.identity.deps.db, shop.id, (trx) => findUserByEmail(trx, shop.id, email)))!;
const sessionsOf = (userId: string) =>
  withSystem(t.identity.deps.db, (trx) =>
    trx.selectFrom('identity.refresh_tokens').select('id').where('user_id', '=', userId).execute(),
  );
const refusal = (work: Promise<unknown>) =>
  work.then(
    () => 'issued',
    (error: unknown) => (error instanceof AppError ? error.code : String(error)),
  );

describe('a sign-in racing a change of its account', () => {
  it('gets no session when the password changed while it was being checked', async () => {
    const user = await addUser(t, shop.id, 'changed@race-shop.test', 'customer');
    const read = await credentialsOf(user.email);
    await changePassword(t.identity.deps, {
      tenantId: shop.id,
      userId: user.id,
      password: 'the-new-password-42',
    });
    const issued = t.identity.deps.tokens.issue(read, tenant(), { passwordHash: read.passwordHash });
    expect(await refusal(issued)).toBe('INVALID_CREDENTIALS');
    expect(await sessionsOf(user.id)).toEqual([]);
  });

  it('gets no session when the user was disabled or erased while it was being checked', async () => {
    const user = await addUser(t, shop.id, 'disabled@race-shop.test', 'staff');
    const read = await credentialsOf(user.email);
    await withTenant(t.identity.deps.db, shop.id, (trx) =>
      changeStatus(trx, shop.id, shop.adminId, user.id, 'disabled'),
    );
    const issued = t.identity.deps.tokens.issue(read, tenant(), { passwordHash: read.passwordHash });
    expect(await refusal(issued)).toBe('INVALID_CREDENTIALS');
    expect(await sessionsOf(user.id)).toEqual([]);
  });

  // PGlite runs one transaction at a time; PostgreSQL runs the change and the sign-in side by side.
  it.runIf(testDatabaseKind() === 'postgres')(
    'waits for a password change in flight and then refuses, rather than reading the old hash',
    async () => {
      const user = await addUser(t, shop.id, 'inflight@race-shop.test', 'customer');
      const read = await credentialsOf(user.email);
      const newHash = await hashPassword('the-new-password-42');
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      let updated!: () => void;
      const isUpdated = new Promise<void>((resolve) => {
        updated = resolve;
      });
      const change = withTenant(t.identity.deps.db, shop.id, async (trx) => {
        await trx
          .updateTable('identity.users')
          .set({ password_hash: newHash })
          .where('id', '=', user.id)
          .execute();
        updated();
        await held;
      });
      await isUpdated;
      const issued = refusal(
        t.identity.deps.tokens.issue(read, tenant(), { passwordHash: read.passwordHash }),
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      release();
      await change;
      expect(await issued).toBe('INVALID_CREDENTIALS');
      expect(await sessionsOf(user.id)).toEqual([]);
    },
  );
});
