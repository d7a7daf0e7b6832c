import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from './errors.ts';
import { grants, type Permission } from './permissions.ts';

export const ROLES = ['customer', 'staff', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The slug of the tenant whose admins are platform admins (they create and list tenants). */
export const PLATFORM_TENANT = 'platform';

/** The id of the platform tenant (migration 0002 inserts it with this id). */
export const PLATFORM_TENANT_ID = '00000000-0000-7000-8000-000000000001';

/** Who is calling: a signed-in user (access token) or a machine (API key). The tenant comes from here only. */
export type Principal =
  | { kind: 'user'; tenantId: string; tenantSlug: string; userId: string; role: Role; sessionId: string }
  | {
      kind: 'apiKey';
      tenantId: string;
      tenantSlug: string;
      apiKeyId: string;
      permissions: string[];
      /** The WAL namespaces the key may use (`*`: all); absent when it was granted none. */
      namespaces?: string[];
    };

export type Credential = { kind: 'bearer' | 'apiKey'; token: string };

/** Turns a credential into a principal, or throws AppError INVALID_TOKEN. Supplied by the identity module. */
export type Authenticator = (credential: Credential) => Promise<Principal>;

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
    /**
     * The request's credential checked again now (a long answer, a stream, outlives the check at
     * its start): its principal as of now, or undefined once it is refused (expired, revoked, its
     * user disabled or erased, its tenant suspended) or was never there.
     */
    reauthenticate(): Promise<Principal | undefined>;
  }
}

/** Reads `Authorization: Bearer …` or `X-API-Key: …`; undefined when the request carries neither. */
export function readCredential(request: FastifyRequest): Credential | undefined {
  const apiKey = request.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey !== '') return { kind: 'apiKey', token: apiKey };
  const header = request.headers.authorization;
  if (header === undefined || header === '') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new AppError('INVALID_TOKEN', 'Authorization header must be "Bearer <token>"');
  return { kind: 'bearer', token: match[1]! };
}

type Guard = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

const guards = new WeakSet<Guard>();
/** Marks fn as a guard: it reads only request.principal, so it can run before the body is read. */
function guard(fn: Guard): Guard {
  guards.add(fn);
  return fn;
}

/**
 * Whether fn is one of the guards below. Declared as a route's preValidation or preHandler, they
 * are moved to its onRequest (guards-first.ts): a caller who may not use a route gets its 401 or
 * 403 before the body is received, parsed or validated.
 */
export function isGuard(fn: unknown): boolean {
  return typeof fn === 'function' && guards.has(fn as Guard);
}

/** The principal of an authenticated request, or 401. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal)
    throw new AppError('UNAUTHENTICATED', 'this route needs an access token or API key');
  return request.principal;
}

/** The signed-in user of the request, or 401/403 when there is none or the caller is an API key. */
export function userOf(request: FastifyRequest): Extract<Principal, { kind: 'user' }> {
  const principal = principalOf(request);
  if (principal.kind !== 'user') throw new AppError('FORBIDDEN', 'this route needs a user, not an API key');
  return principal;
}

/** preHandler: a signed-in user holding one of the roles (any role when none is named). */
export function requireUser(...roles: Role[]): Guard {
  return guard(async (request) => {
    const user = userOf(request);
    if (roles.length > 0 && !roles.includes(user.role)) {
      throw new AppError('FORBIDDEN', `this route needs role ${roles.join(' or ')}`);
    }
  });
}

/** preHandler: an admin user, or an API key granted the permission. */
export function requirePermission(permission: Permission): Guard {
  return guard(async (request) => {
    const principal = principalOf(request);
    if (principal.kind === 'user' && principal.role === 'admin') return;
    if (principal.kind === 'apiKey' && grants(principal.permissions, permission)) return;
    throw new AppError('FORBIDDEN', `this route needs permission ${permission}`);
  });
}

/** The audit actor of a principal: `user:<userId>` or `key:<apiKeyId>`. */
export function actorName(principal: Principal): string {
  return principal.kind === 'user' ? `user:${principal.userId}` : `key:${principal.apiKeyId}`;
}

/** Who makes a request's change, and in which tenant. */
export function actorOf(request: FastifyRequest): { tenantId: string; actor: string } {
  const principal = principalOf(request);
  return { tenantId: principal.tenantId, actor: actorName(principal) };
}

/** preHandler: an operator or admin user, or an API key granted the permission (the exception collector). */
export function requireOperator(permission: Permission): Guard {
  return guard(async (request) => {
    const principal = principalOf(request);
    if (principal.kind === 'user' && (principal.role === 'operator' || principal.role === 'admin')) return;
    if (principal.kind === 'apiKey' && grants(principal.permissions, permission)) return;
    throw new AppError('FORBIDDEN', `this route needs an operator or admin, or permission ${permission}`);
  });
}

/** The roles that run a store's back office. */
export const STAFF_ROLES: readonly Role[] = ['staff', 'operator', 'admin'];

/** preHandler: a staff user (staff, operator or admin), or an API key granted the permission. */
export function requireStaff(permission: Permission): Guard {
  return guard(async (request) => {
    if (isStaff(principalOf(request), permission)) return;
    throw new AppError('FORBIDDEN', `this route needs a staff user or permission ${permission}`);
  });
}

/** Whether the caller is staff (a staff, operator or admin user, or an API key granted the permission). */
export function isStaff(principal: Principal | undefined, permission: Permission): boolean {
  if (!principal) return false;
  if (principal.kind === 'user') return STAFF_ROLES.includes(principal.role);
  return grants(principal.permissions, permission);
}

/** preHandler: an admin of the platform tenant. */
export const requirePlatformAdmin: Guard = guard(async (request) => {
  const user = userOf(request);
  if (user.tenantSlug !== PLATFORM_TENANT || user.role !== 'admin') {
    throw new AppError('FORBIDDEN', 'this route is for platform admins');
  }
});

/** OpenAPI security requirement for routes that take a credential. */
export const SECURED: Record<string, string[]>[] = [{ bearerAuth: [] }, { apiKeyAuth: [] }];

/** OpenAPI security of storefront routes: anonymous shoppers (naming the store with X-Tenant) or a credential. */
export const STOREFRONT_SECURED: Record<string, string[]>[] = [{}, ...SECURED];
