import type { Kysely } from 'kysely';
import type { TenantResolver } from '../../platform/http/index.ts';
import type { IdentityTables } from '../tables.ts';
import type { TenantStatusCache } from './tenant-status-cache.ts';
import { findTenantBySlug } from './tenant-store.ts';

const HIT_TTL_MS = 60_000;
const MISS_TTL_MS = 5_000;
const MAX_ENTRIES = 10_000;

/**
 * Storefront tenant lookup by slug (X-Tenant), cached per process: a slug never changes owner
 * (tenants are renamed, not re-slugged), so a hit is kept a minute and a miss five seconds (a
 * store created meanwhile is found soon). Suspension is checked on every call, from the status
 * cache that NOTIFY keeps current.
 */
export function createTenantResolver(
  db: Kysely<IdentityTables>,
  status: TenantStatusCache,
  { maxEntries = MAX_ENTRIES }: { maxEntries?: number } = {},
): TenantResolver {
  // Stores and misses are bounded apart: anonymous callers inventing slugs fill only the misses,
  // never pushing the stores that exist out of the cache.
  const stores = new Map<string, { id: string | undefined; until: number }>();
  const misses = new Map<string, { id: string | undefined; until: number }>();
  return async (slug) => {
    const now = Date.now();
    let entry = stores.get(slug) ?? misses.get(slug);
    if (!entry || entry.until < now) {
      const tenant = await findTenantBySlug(db, slug);
      const cache = tenant ? stores : misses;
      (tenant ? misses : stores).delete(slug);
      if (cache.size >= maxEntries) cache.clear();
      entry = { id: tenant?.id, until: now + (tenant ? HIT_TTL_MS : MISS_TTL_MS) };
      cache.set(slug, entry);
    }
    if (entry.id) await status.assertActive(entry.id);
    return entry.id;
  };
}
