import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { TestApp } from '../../platform/testing/index.ts';
import { createTenant } from '../tenants/index.ts';

/** Password every fixture account uses. */
export const PASSWORD = 'correct-horse-battery-staple';

export type TestTenant = { id: string; slug: string; adminId: string; adminEmail: string };

/** Creates a tenant with an admin (through the tenants module, as a platform admin would). */
export async function createTestTenant(t: TestApp, slug: string): Promise<TestTenant> {
  const adminEmail = `admin@${slug}.test`;
  const { tenant, admin } = await createTenant(
    t.identity.deps.db,
    { slug, name: `Shop ${slug}`, adminEmail, adminPassword: PASSWORD },
    t.identity.deps.onTenantCreated,
  );
  return { id: tenant.id, slug, adminId: admin.id, adminEmail };
}

/** POSTs JSON through app.inject. */
export function post(
  app: FastifyInstance,
  url: string,
  payload: unknown,
  headers: Record<string, string> = {},
  remoteAddress?: string,
): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url,
    payload: payload as object,
    headers,
    ...(remoteAddress ? { remoteAddress } : {}),
  });
}

export type TokenPairBody = {
  accessToken: string;
  refreshToken: string;
  tokenType: string;
  expiresIn: number;
};

/** Tries to sign in and returns the answer, whatever it is. */
export function tryLogin(
  app: FastifyInstance,
  tenant: string,
  email: string,
  password = PASSWORD,
): Promise<LightMyRequestResponse> {
  return post(app, '/api/v1/auth/login', { tenant, email, password });
}

/** Signs in and returns the token pair; fails the test on any other answer. */
export async function login(app: FastifyInstance, tenant: string, email: string, password = PASSWORD) {
  const response = await tryLogin(app, tenant, email, password);
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.statusCode} ${response.body}`);
  return response.json<TokenPairBody>();
}

/** GET with a bearer token (or any raw Authorization header). */
export function getWith(app: FastifyInstance, url: string, headers: Record<string, string>) {
  return app.inject({ method: 'GET', url, headers });
}
