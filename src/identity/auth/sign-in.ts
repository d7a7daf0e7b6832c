import { withTenant } from '../../platform/db/index.ts';
import { AppError } from '../../platform/http/index.ts';
import type { IdentityDeps } from '../module.ts';
import { verifyPassword } from '../passwords.ts';
import { findTenantBySlug } from '../tenants/index.ts';
import type { TokenPair } from '../tokens/index.ts';
import { findUserByEmail } from '../users/index.ts';
import type { LoginThrottle } from './login-throttle.ts';

const REFUSED = 'email or password is wrong';

/**
 * Checks a password and starts a session. Unknown tenant, unknown user, wrong password and
 * disabled account all answer the same 401 after the same password-hash work.
 */
export async function signIn(
  deps: IdentityDeps,
  throttle: LoginThrottle,
  input: { tenant: string; email: string; password: string; ip: string },
): Promise<TokenPair> {
  await throttle.admit(input.tenant, input.email, input.ip);
  const tenant = await findTenantBySlug(deps.db, input.tenant);
  const user = tenant
    ? await withTenant(deps.db, tenant.id, (trx) => findUserByEmail(trx, tenant.id, input.email))
    : undefined;
  // Hashing runs outside any transaction: embedded PGlite has one connection to share.
  const passwordOk = await verifyPassword(user?.passwordHash, input.password);
  if (!tenant || !user || !passwordOk || user.status !== 'active') {
    await throttle.failed(input.tenant, input.email);
    throw new AppError('INVALID_CREDENTIALS', REFUSED);
  }
  // Said only to whoever knows the password: a suspended tenant's users learn why they cannot sign in.
  if (tenant.status !== 'active')
    throw new AppError('TENANT_SUSPENDED', `tenant ${tenant.slug} is suspended`);
  // Only if the password checked is still the user's and the user still active (see issue): a
  // password changed meanwhile is a failed sign-in.
  const pair = await deps.tokens
    .issue(user, tenant, { passwordHash: user.passwordHash })
    .catch(async (error) => {
      if (error instanceof AppError && error.code === 'INVALID_CREDENTIALS')
        await throttle.failed(input.tenant, input.email);
      throw error;
    });
  await throttle.succeeded(input.tenant, input.email, input.ip);
  return pair;
}
