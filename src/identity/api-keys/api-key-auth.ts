import { withSystem, withTenant } from '../../platform/db/index.ts';
import { AppError, type Principal } from '../../platform/http/index.ts';
import type { IdentityDeps } from '../module.ts';
import { sha256Hex } from '../tokens/index.ts';
import { findApiKeyByHash, touchApiKey } from './api-key-store.ts';

/** The channel API key revocations are announced on, with the key's id (migration 0012). */
export const API_KEY_CHANGES_CHANNEL = 'mercato_identity_api_keys';

/**
 * How long a successful lookup is reused at most. Revocations reach every listening process by
 * NOTIFY within moments; this bounds how long a process that missed one accepts the key.
 */
export const API_KEY_CACHE_MS = 5_000;
const CACHE_MAX_ENTRIES = 10_000;
const TOUCH_EVERY_MS = 60_000;

type ApiKeyPrincipal = Extract<Principal, { kind: 'apiKey' }>;
/** until: the lookup's age limit or the key's expiry, whichever comes first. */
type Cached = { principal: ApiKeyPrincipal; until: number };
type ApiKeyCache = { byHash: Map<string, Cached>; touchedAt: Map<string, number>; invalidations: number };

// One cache per running identity module (tests run several apps in one process).
const caches = new WeakMap<IdentityDeps, ApiKeyCache>();

function cacheOf(deps: IdentityDeps): ApiKeyCache {
  let cache = caches.get(deps);
  if (!cache) {
    cache = { byHash: new Map(), touchedAt: new Map(), invalidations: 0 };
    caches.set(deps, cache);
  }
  return cache;
}

/** Drops a key from this process's cache, so its revocation takes effect here immediately. */
export function forgetApiKey(deps: IdentityDeps, apiKeyId: string): void {
  const cache = cacheOf(deps);
  cache.invalidations += 1;
  for (const [hash, entry] of cache.byHash)
    if (entry.principal.apiKeyId === apiKeyId) cache.byHash.delete(hash);
}

/** Drops every cached key (revocation notifications may have been missed). */
export function forgetAllApiKeys(deps: IdentityDeps): void {
  const cache = cacheOf(deps);
  cache.invalidations += 1;
  cache.byHash.clear();
}

/**
 * The key's principal and how long it may be reused: API_KEY_CACHE_MS, or less when the key
 * expires sooner. An expired key is refused exactly as an unknown or revoked one.
 */
async function lookUp(deps: IdentityDeps, hash: string, now: number): Promise<Cached> {
  const grant = await withSystem(deps.db, (trx) => findApiKeyByHash(trx, hash));
  const expiresAt = grant?.expiresAt?.getTime() ?? Number.POSITIVE_INFINITY;
  if (!grant || grant.revoked || expiresAt <= now)
    throw new AppError('INVALID_TOKEN', 'API key is invalid, revoked or expired');
  if (!grant.tenantActive) throw new AppError('TENANT_SUSPENDED', 'this tenant is suspended');
  const principal: ApiKeyPrincipal = {
    kind: 'apiKey',
    tenantId: grant.tenantId,
    tenantSlug: grant.tenantSlug,
    apiKeyId: grant.id,
    permissions: grant.permissions,
    ...(grant.namespaces.length > 0 ? { namespaces: grant.namespaces } : {}),
  };
  return { principal, until: Math.min(now + API_KEY_CACHE_MS, expiresAt) };
}

/** Last-use bookkeeping, at most once a minute per key and process (the SQL also guards across processes). */
async function touch(
  deps: IdentityDeps,
  cache: ApiKeyCache,
  principal: ApiKeyPrincipal,
  now: number,
): Promise<void> {
  if (now - (cache.touchedAt.get(principal.apiKeyId) ?? 0) < TOUCH_EVERY_MS) return;
  cache.touchedAt.set(principal.apiKeyId, now);
  if (cache.touchedAt.size > CACHE_MAX_ENTRIES) cache.touchedAt.clear();
  try {
    await withTenant(deps.db, principal.tenantId, (trx) =>
      touchApiKey(trx, principal.tenantId, principal.apiKeyId),
    );
  } catch (error) {
    deps.ctx.logger.warn({ err: error, apiKeyId: principal.apiKeyId }, 'could not record API key use');
  }
}

/**
 * Turns an `mk_…` key into its principal; AppError INVALID_TOKEN when unknown, revoked or expired
 * (a cached key too: its entry ends at the key's expiry).
 */
export async function authenticateApiKey(deps: IdentityDeps, token: string): Promise<Principal> {
  const hash = sha256Hex(token);
  const cache = cacheOf(deps);
  const now = Date.now();
  let entry = cache.byHash.get(hash);
  if (!entry || entry.until <= now) {
    cache.byHash.delete(hash);
    const before = cache.invalidations;
    entry = await lookUp(deps, hash, now);
    // A lookup that overlapped a revocation is not kept: it may have read the key still live.
    if (before === cache.invalidations) {
      if (cache.byHash.size >= CACHE_MAX_ENTRIES) cache.byHash.clear();
      cache.byHash.set(hash, entry);
    }
  }
  await touch(deps, cache, entry.principal, now);
  return entry.principal;
}
