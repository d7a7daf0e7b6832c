import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { withTenant } from '../../platform/db/index.ts';
import type { Role } from '../../platform/http/index.ts';
import type { TestApp } from '../../platform/testing/index.ts';
import { createTestTenant, login, PASSWORD, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { hashPassword } from '../passwords.ts';
import { findTenantBySlug } from '../tenants/index.ts';
import { createUser, type User } from './user-store.ts';

let fixtureHash: Promise<string> | undefined;
/** The fixture password's hash, made once (each user gets it: a test signs in with PASSWORD). */
export const fixturePasswordHash = () => {
  fixtureHash ??= hashPassword(PASSWORD);
  return fixtureHash;
};

/** Adds a user with the fixture password straight through the store. */
export async function addUser(t: TestApp, tenantId: string, email: string, role: Role): Promise<User> {
  const passwordHash = await fixturePasswordHash();
  return withTenant(t.identity.deps.db, tenantId, (trx) =>
    createUser(trx, { tenantId, email, passwordHash, name: email.split('@')[0]!, role }),
  );
}

/** The Authorization header carrying an access token. */
export const auth = (accessToken: string): Record<string, string> => ({
  authorization: `Bearer ${accessToken}`,
});

/** Signs in and returns the Authorization header for the account. */
export async function bearer(t: TestApp, tenantSlug: string, email: string): Promise<Record<string, string>> {
  return auth((await login(t.app, tenantSlug, email)).accessToken);
}

/** A platform admin (admin of the `platform` tenant) and their Authorization header. */
export async function platformAdmin(t: TestApp, email = 'root@platform.test') {
  const platform = await findTenantBySlug(t.identity.deps.db, 'platform');
  const user = await addUser(t, platform!.id, email, 'admin');
  return { user, headers: await bearer(t, 'platform', email) };
}

/** Sends a JSON request through app.inject. */
export function send(
  app: FastifyInstance,
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  url: string,
  headers: Record<string, string>,
  payload?: unknown,
): Promise<LightMyRequestResponse> {
  return app.inject({
    method,
    url,
    headers,
    ...(payload !== undefined ? { payload: payload as object } : {}),
  });
}

/** A tenant with a staff user (staff@<slug>.test), and that user's Authorization header. */
export type ShopWithStaff = TestTenant & { staff: Record<string, string> };

export async function createShopWithStaff(t: TestApp, slug: string): Promise<ShopWithStaff> {
  const tenant = await createTestTenant(t, slug);
  await addUser(t, tenant.id, `staff@${slug}.test`, 'staff');
  return { ...tenant, staff: await bearer(t, slug, `staff@${slug}.test`) };
}
