import { randomInt } from 'node:crypto';
import { withTenant } from '../platform/db/index.ts';
import { AppError, PLATFORM_TENANT, type Role } from '../platform/http/index.ts';
import type { IdentityDeps } from './module.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { createTenant, findTenantBySlug } from './tenants/index.ts';
import { createUser, findUserByEmail } from './users/index.ts';

const DEMO_TENANT = { slug: 'demo', name: 'Demo Shop' };
const DEMO_ADMIN = { email: 'admin@demo.test', name: 'Demo Admin' };
const DEMO_CUSTOMER = { email: 'customer@demo.test', name: 'Demo Customer', role: 'customer' as Role };
const PLATFORM_ADMIN = { email: 'admin@platform.test', name: 'Platform Admin', role: 'admin' as Role };
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

/** A random password of length characters from an unambiguous alphabet (about 5.8 bits each). */
export function generatePassword(length = 20): string {
  return Array.from({ length }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
}

/** Creates the user unless the tenant has that email already; true when it created one. */
async function ensureUser(
  deps: IdentityDeps,
  tenantId: string,
  user: { email: string; name: string; role: Role },
  password: string,
): Promise<boolean> {
  return withTenant(deps.db, tenantId, async (trx) => {
    if (await findUserByEmail(trx, tenantId, user.email)) return false;
    await createUser(trx, { tenantId, passwordHash: await hashPassword(password), ...user });
    return true;
  });
}

/** Swallows the conflict of another process seeding at the same moment. */
async function unlessTaken(work: Promise<boolean>): Promise<boolean> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof AppError && (error.code === 'TENANT_SLUG_TAKEN' || error.code === 'EMAIL_TAKEN'))
      return false;
    throw error;
  }
}

/**
 * The demo users (as tenant slug and email) whose stored password is not `password`: a data
 * directory seeded with another MERCATO_DEMO_PASSWORD (or a generated one) keeps its users'
 * passwords, so the given one would not sign them in.
 */
async function mismatchedDemoUsers(
  deps: IdentityDeps,
  password: string,
): Promise<{ tenant: string; email: string }[]> {
  const accounts = [
    { tenant: PLATFORM_TENANT, email: PLATFORM_ADMIN.email },
    { tenant: DEMO_TENANT.slug, email: DEMO_ADMIN.email },
    { tenant: DEMO_TENANT.slug, email: DEMO_CUSTOMER.email },
  ];
  const mismatched: { tenant: string; email: string }[] = [];
  for (const account of accounts) {
    const tenant = await findTenantBySlug(deps.db, account.tenant);
    if (!tenant) continue;
    const user = await withTenant(deps.db, tenant.id, (trx) =>
      findUserByEmail(trx, tenant.id, account.email),
    );
    // Hashing runs outside any transaction: embedded PGlite has one connection to share.
    if (user && !(await verifyPassword(user.passwordHash, password))) mismatched.push(account);
  }
  return mismatched;
}

/** What start prints when MERCATO_DEMO_PASSWORD does not sign the demo users in. */
export function demoPasswordWarning(mismatched: { tenant: string; email: string }[]): string[] {
  if (mismatched.length === 0) return [];
  return [
    `Warning: MERCATO_DEMO_PASSWORD is not the password of ${mismatched.map((m) => m.email).join(', ')}:`,
    'this data directory was seeded earlier with another one (the one printed at its first start).',
    'Sign in with that one, or make MERCATO_DEMO_PASSWORD theirs (stop the server first on embedded PGlite):',
    ...mismatched.map(
      (m) =>
        `  npx mercato users set-password --tenant ${m.tenant} --email ${m.email} --password "$MERCATO_DEMO_PASSWORD"`,
    ),
  ];
}

/**
 * Seeds the demo tenant "demo" (admin@demo.test, customer@demo.test) and the platform admin
 * admin@platform.test, each only when absent, so a second call creates nothing. The password
 * is the given one or a generated one, returned so the server can print it once. When a password
 * is given and some demo user has another one (seeded earlier), `warning` says so and how to fix it.
 */
export async function seedDemo(
  deps: IdentityDeps,
  password: string | undefined,
): Promise<{ created: boolean; password?: string; warning?: string[] }> {
  const secret = password ?? generatePassword();
  let created = false;
  const platform = await findTenantBySlug(deps.db, PLATFORM_TENANT);
  if (!platform) throw new Error(`the ${PLATFORM_TENANT} tenant is missing: migrations have not run`);
  created = (await unlessTaken(ensureUser(deps, platform.id, PLATFORM_ADMIN, secret))) || created;

  let demo = await findTenantBySlug(deps.db, DEMO_TENANT.slug);
  if (!demo) {
    const tenantCreated = await unlessTaken(
      createTenant(
        deps.db,
        {
          ...DEMO_TENANT,
          adminEmail: DEMO_ADMIN.email,
          adminName: DEMO_ADMIN.name,
          adminPassword: secret,
        },
        deps.onTenantCreated,
      ).then(() => true),
    );
    created = tenantCreated || created;
    demo = await findTenantBySlug(deps.db, DEMO_TENANT.slug);
  }
  if (demo) created = (await unlessTaken(ensureUser(deps, demo.id, DEMO_CUSTOMER, secret))) || created;
  // Only a start that seeded nothing can find other passwords (argon2 verifies cost start-up time).
  const warning =
    password === undefined || created ? [] : demoPasswordWarning(await mismatchedDemoUsers(deps, password));
  return {
    created,
    ...(created ? { password: secret } : {}),
    ...(warning.length > 0 ? { warning } : {}),
  };
}
