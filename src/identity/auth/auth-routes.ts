import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../../platform/db/index.ts';
import { AppError, PLATFORM_TENANT } from '../../platform/http/index.ts';
import type { IdentityDeps } from '../module.ts';
import { hashPassword, passwordRouteRateLimit } from '../passwords.ts';
import { findTenantBySlug } from '../tenants/index.ts';
import { createUser } from '../users/index.ts';
import { UserView } from '../users/user-schemas.ts';
import {
  IntrospectionView,
  LoginBody,
  RefreshBody,
  RegisterBody,
  TokenPairView,
  ValidateBody,
} from './auth-schemas.ts';
import { signIn } from './sign-in.ts';

const tags = ['auth'];

// RFC 6749 §5.1: responses carrying tokens must not be cached.
const noStore = (reply: FastifyReply) =>
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');

/** Whether the tenant is suspended, by the same per-process set that authentication asks. */
async function tenantSuspended(deps: IdentityDeps, tenantId: string): Promise<boolean> {
  try {
    await deps.tenantStatus.assertActive(tenantId);
    return false;
  } catch (error) {
    if (error instanceof AppError && error.code === 'TENANT_SUSPENDED') return true;
    throw error;
  }
}

/** POST /auth/register, /auth/login, /auth/refresh, /auth/logout and /auth/validate: public routes. */
export function authRoutes(deps: IdentityDeps) {
  const { config } = deps.ctx;
  const throttle = deps.loginThrottle;
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/auth/register',
      {
        // Each registration costs an argon2 hash (19 MiB, tens of ms of CPU), as a login does: the
        // same per-IP budget, counted apart, rather than the anonymous one ten times larger.
        config: { rateLimit: passwordRouteRateLimit(config.rateLimit.loginPerIpPerMinute, 'register') },
        schema: {
          tags,
          summary: 'Create a customer account in a tenant',
          description:
            'The role is always customer; staff and admins are created by a tenant admin. Limited per IP ' +
            'per minute as logins are (MERCATO_LOGIN_RATE_LIMIT, 429 RATE_LIMITED).',
          body: RegisterBody,
          response: { 201: UserView },
        },
      },
      async (request, reply) => {
        const { tenant: slug, email, password, name } = request.body;
        const tenant = await findTenantBySlug(deps.db, slug);
        // The platform tenant holds platform admins only; nobody signs up to it.
        if (tenant?.status !== 'active' || tenant.slug === PLATFORM_TENANT) {
          throw new AppError('NOT_FOUND', `tenant ${slug} not found`);
        }
        // Hashed before the transaction: it holds no connection (PGlite has one) meanwhile, and a
        // taken email costs the hash too, so EMAIL_TAKEN takes as long as a registration.
        const passwordHash = await hashPassword(password);
        const user = await withTenant(deps.db, tenant.id, (trx) =>
          createUser(trx, {
            tenantId: tenant.id,
            email: email.toLowerCase(),
            passwordHash,
            name,
            role: 'customer',
          }),
        );
        reply.code(201).header('location', '/api/v1/users/profile');
        return user;
      },
    );

    app.post(
      '/auth/login',
      {
        config: { rateLimit: passwordRouteRateLimit(config.rateLimit.loginPerIpPerMinute, 'login') },
        schema: {
          tags,
          summary: 'Sign in with email and password',
          description:
            'Every refusal is the same 401 INVALID_CREDENTIALS. Attempts are limited per IP per minute ' +
            '(429 RATE_LIMITED), per account and IP, and ten times more loosely per account from all IPs ' +
            'except those that signed in to it before (429 LOGIN_THROTTLED with Retry-After); a successful ' +
            "sign-in clears its IP's count.",
          body: LoginBody,
          response: { 200: TokenPairView },
        },
      },
      async (request, reply) => {
        noStore(reply);
        return signIn(deps, throttle, { ...request.body, ip: request.ip });
      },
    );

    app.post(
      '/auth/refresh',
      {
        schema: {
          tags,
          summary: 'Trade a refresh token for a new pair',
          description:
            'Refresh tokens are single use. One rotated less than MERCATO_REFRESH_REUSE_GRACE_SECONDS ago ' +
            '(two tabs refreshing at once) gets a fresh pair of the same session; presenting one rotated ' +
            'longer ago, or revoked, revokes the whole session and answers 401 REFRESH_TOKEN_REUSED. While ' +
            'the tenant is suspended a refresh answers 403 TENANT_SUSPENDED and uses nothing up: the same ' +
            'token works once the tenant is active again.',
          body: RefreshBody,
          response: { 200: TokenPairView },
        },
      },
      async (request, reply) => {
        noStore(reply);
        return deps.tokens.refresh(request.body.refreshToken);
      },
    );

    app.post(
      '/auth/logout',
      {
        schema: {
          tags,
          summary: 'End the session the refresh token belongs to',
          description:
            "The session's access tokens stop working at once, on every process. Idempotent: an unknown or " +
            'already revoked token also answers 204.',
          body: RefreshBody,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        await deps.tokens.revoke(request.body.refreshToken);
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/auth/validate',
      {
        schema: {
          tags,
          summary: 'Introspect an access token (RFC 7662 style)',
          description:
            'active is false for an invalid or expired token, one whose session was logged out or ' +
            'revoked, whose user is disabled or whose role changed since it was issued, or whose tenant is suspended.',
          body: ValidateBody,
          response: { 200: IntrospectionView },
        },
      },
      async (request, reply) => {
        noStore(reply);
        const answer = await deps.tokens.introspect(request.body.token);
        // Every route refuses a suspended tenant's tokens (TENANT_SUSPENDED): they are not active.
        if (answer.active && (await tenantSuspended(deps, answer.tenantId)))
          return { active: false as const };
        return answer;
      },
    );
  };
}
