import { withTenant } from '../../platform/db/index.ts';
import { AppError } from '../../platform/http/index.ts';
import type { IdentityDeps } from '../module.ts';
import { hashPassword, passwordProblem } from '../passwords.ts';
import { findTenantBySlug } from '../tenants/index.ts';
import { revokeUserSessions } from '../tokens/index.ts';
import { findUserByEmail } from './user-store.ts';

/**
 * Gives the user a new password and revokes every session of theirs except keepSession (the
 * one changing it, if any); the revocations reach every process at once (migration 0012).
 * With currentHash (the hash the caller checked the current password against) it is a
 * compare-and-set: the write happens only while that is still the user's hash, so of two
 * changes checked against the same password only the first commits (the second waits for its
 * row lock, then finds another hash). False when nothing was written: no such user (or an
 * erased one), or, with currentHash, a password that changed meanwhile.
 */
export async function changePassword(
  deps: Pick<IdentityDeps, 'db'>,
  input: { tenantId: string; userId: string; password: string; keepSession?: string; currentHash?: string },
): Promise<boolean> {
  // Hashing runs outside any transaction: embedded PGlite has one connection to share.
  const passwordHash = await hashPassword(input.password);
  return withTenant(deps.db, input.tenantId, async (trx) => {
    let update = trx
      .updateTable('identity.users')
      .set({ password_hash: passwordHash, updated_at: new Date() })
      .where('tenant_id', '=', input.tenantId)
      .where('id', '=', input.userId)
      .where('status', '!=', 'erased');
    if (input.currentHash !== undefined) update = update.where('password_hash', '=', input.currentHash);
    const updated = await update.returning('id').executeTakeFirst();
    if (!updated) return false;
    await revokeUserSessions(
      trx,
      input.tenantId,
      input.userId,
      input.keepSession !== undefined ? { except: input.keepSession } : {},
    );
    return true;
  });
}

/**
 * `mercato users set-password`: sets the password of the tenant's user with that email and signs
 * out every session of theirs. NOT_FOUND for an unknown tenant or user, VALIDATION_FAILED naming
 * --password for a password the API would refuse.
 */
export async function setPasswordByEmail(
  deps: Pick<IdentityDeps, 'db'>,
  input: { tenant: string; email: string; password: string },
): Promise<{ tenantId: string; userId: string; email: string }> {
  const problem = passwordProblem(input.password);
  if (problem) {
    throw new AppError('VALIDATION_FAILED', `--password ${problem}`, {
      errors: [{ in: 'body', pointer: '/password', message: problem }],
    });
  }
  const tenant = await findTenantBySlug(deps.db, input.tenant);
  if (!tenant) throw new AppError('NOT_FOUND', `no tenant with slug "${input.tenant}"`);
  const user = await withTenant(deps.db, tenant.id, (trx) => findUserByEmail(trx, tenant.id, input.email));
  if (!user || user.status === 'erased')
    throw new AppError('NOT_FOUND', `tenant "${tenant.slug}" has no user ${input.email}`);
  await changePassword(deps, { tenantId: tenant.id, userId: user.id, password: input.password });
  return { tenantId: tenant.id, userId: user.id, email: user.email };
}
