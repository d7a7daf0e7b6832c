import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Authenticator, TenantResolver } from '../platform/http/index.ts';
import { type AppContext, deriveServerKey, type MercatoModule } from '../platform/index.ts';
import { addressRoutes } from './addresses/index.ts';
import {
  API_KEY_CHANGES_CHANNEL,
  apiKeyRoutes,
  authenticateApiKey,
  forgetAllApiKeys,
  forgetApiKey,
} from './api-keys/index.ts';
import {
  authRoutes,
  createLoginThrottle,
  LOGIN_THROTTLE_KEY_INFO,
  type LoginThrottle,
} from './auth/index.ts';
import type { IdentityTables } from './tables.ts';
import {
  createTenantResolver,
  createTenantStatusCache,
  type TenantCreatedHook,
  type TenantStatusCache,
  tenantRoutes,
} from './tenants/index.ts';
import {
  createTokenService,
  SESSION_CHANGES_CHANNEL,
  startRefreshTokenPurge,
  type TokenService,
} from './tokens/index.ts';
import {
  createProfileCache,
  type ProfileCache,
  profileRoutes,
  staffRoutes,
  USER_CHANGES_CHANNEL,
} from './users/index.ts';

/** What identity's route plugins and services receive. */
export type IdentityDeps = {
  ctx: AppContext;
  db: Kysely<IdentityTables>;
  tokens: TokenService;
  profiles: ProfileCache;
  /** Which tenants are suspended (their credentials answer 403 TENANT_SUSPENDED). */
  tenantStatus: TenantStatusCache;
  /**
   * The sign-in throttle (login and password change share its budgets), its counters named under
   * the deployment's key (LOGIN_THROTTLE_KEY_INFO), so every process shares them.
   */
  loginThrottle: LoginThrottle;
  /**
   * Run in each new tenant's creation transaction (createTenant): what other modules give every
   * tenant (the WAL's system namespaces). The composition root adds them (server.ts); identity
   * imports no other module.
   */
  onTenantCreated: TenantCreatedHook[];
};

export type IdentityModule = MercatoModule & {
  authenticate: Authenticator;
  deps: IdentityDeps;
  /** A store's tenant id by its slug (the storefront's X-Tenant header). */
  resolveTenant: TenantResolver;
  /** Runs `hook` in every tenant's creation transaction from now on (once, however often it is added). */
  addTenantHook(hook: TenantCreatedHook): void;
};

const JWK = {
  type: 'object',
  properties: {
    kty: { type: 'string' },
    crv: { type: 'string' },
    x: { type: 'string' },
    kid: { type: 'string' },
    alg: { type: 'string' },
    use: { type: 'string' },
  },
  additionalProperties: true,
} as const;
/** The public keys access tokens are signed with (documented in the OpenAPI document). */
const JWKS_SCHEMA = {
  tags: ['identity'],
  summary: 'Public keys that verify access tokens (JWKS, RFC 7517): Ed25519, EdDSA',
  operationId: 'getJwks',
  response: {
    200: { type: 'object', required: ['keys'], properties: { keys: { type: 'array', items: JWK } } },
  },
};

/**
 * Tenants, users, sessions, API keys, roles and addresses. Call init() (via start) before serving.
 * `options.onTenantCreated`: hooks run in each new tenant's creation transaction (more may be
 * pushed onto deps.onTenantCreated before tenants are created).
 */
export async function createIdentity(
  ctx: AppContext,
  options: { onTenantCreated?: TenantCreatedHook[] } = {},
): Promise<IdentityModule> {
  const db = ctx.db.kysely as Kysely<IdentityTables>;
  const tokens = await createTokenService(ctx, db);
  // After the token service: on a first start it has just stored the signing key derived from.
  const throttleKey = await deriveServerKey(ctx, db, LOGIN_THROTTLE_KEY_INFO);
  const loginThrottle = createLoginThrottle(ctx.counters, ctx.config.rateLimit, throttleKey);
  const profiles = createProfileCache({ ttlMs: ctx.config.profileCacheTtlSeconds * 1000 });
  const tenantStatus = createTenantStatusCache(db);
  const onTenantCreated = [...(options.onTenantCreated ?? [])];
  const deps: IdentityDeps = { ctx, db, tokens, profiles, tenantStatus, loginThrottle, onTenantCreated };
  let stopPurge: (() => void) | undefined;
  let unlisten: (() => Promise<void>) | undefined;
  let unlistenTenants: (() => Promise<void>) | undefined;
  let unlistenSessions: (() => Promise<void>)[] = [];
  return {
    name: 'identity',
    deps,
    resolveTenant: createTenantResolver(db, tenantStatus),
    addTenantHook: (hook) => {
      if (!onTenantCreated.includes(hook)) onTenantCreated.push(hook);
    },
    authenticate: async (credential) => {
      const principal =
        credential.kind === 'apiKey' || credential.token.startsWith('mk_')
          ? await authenticateApiKey(deps, credential.token)
          : await tokens.authenticate(credential.token);
      await tenantStatus.assertActive(principal.tenantId);
      return principal;
    },
    async rootRoutes(app: FastifyInstance) {
      app.get('/.well-known/jwks.json', { config: { rateLimit: false }, schema: JWKS_SCHEMA }, async () =>
        tokens.jwks(),
      );
    },
    async routes(app: FastifyInstance) {
      await app.register(tenantRoutes(deps));
      await app.register(authRoutes(deps));
      await app.register(profileRoutes(deps));
      await app.register(staffRoutes(deps));
      await app.register(addressRoutes(deps));
      await app.register(apiKeyRoutes(deps));
    },
    async start() {
      stopPurge = startRefreshTokenPurge(deps);
      // Profiles are cached only once this process hears about every change to a user.
      unlisten = await ctx.db.listen(
        USER_CHANGES_CHANNEL,
        (userId) => profiles.invalidate(userId),
        profiles.clear,
      );
      profiles.enable();
      // Suspensions reach every process through NOTIFY (migration 0013).
      unlistenTenants = await tenantStatus.start(ctx.db.listen);
      // Access tokens' sessions are cached only once this process hears of every change to a
      // user and every revoked session: disabling, demoting or logging out reaches it in a moment.
      // API key revocations likewise reach the key cache of every process.
      const { sessions } = tokens;
      unlistenSessions = await Promise.all([
        ...[USER_CHANGES_CHANNEL, SESSION_CHANGES_CHANNEL].map((channel) =>
          ctx.db.listen(channel, (userId) => sessions.invalidate(userId), sessions.clear),
        ),
        ctx.db.listen(
          API_KEY_CHANGES_CHANNEL,
          (apiKeyId) => forgetApiKey(deps, apiKeyId),
          () => forgetAllApiKeys(deps),
        ),
      ]);
      sessions.enable();
    },
    async stop() {
      stopPurge?.();
      await unlisten?.();
      await unlistenTenants?.();
      for (const stopListening of unlistenSessions) await stopListening();
    },
  };
}
