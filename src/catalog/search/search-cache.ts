/** The channel search document changes are announced on (migration 0021): the tenant id. */
export const SEARCH_CHANGES_CHANNEL = 'mercato_catalog_search';

export type SearchCache = {
  /**
   * The answer cached under key for the tenant, or what load() returns: cached unless the
   * tenant's catalog changed while it loaded, so a slow search never keeps what a change removed.
   */
  read<T>(tenantId: string, key: string, load: () => Promise<T>): Promise<T>;
  /** A NOTIFY payload ('<tenant id>' or '<tenant id>:…'): drops every answer of that tenant. */
  onChange(payload: string): void;
  clear(): void;
  /** Reads go straight to load() until enable() (called once change notifications flow). */
  enable(): void;
  readonly size: number;
};

type Entry = { value: unknown; generation: number; expiresAt: number };

/**
 * Search answers per process, as Elasticsearch's request cache keeps a shard's answers until its
 * next refresh: a shop's answers live ttlMs at most and are dropped as soon as anything of its
 * catalog changes (a generation per tenant, bumped by each announcement), on every process. At
 * most maxEntries answers; beyond it the oldest goes. ttlMs 0 turns it off.
 */
export function createSearchCache(options: {
  ttlMs: number;
  maxEntries?: number;
  now?: () => number;
}): SearchCache {
  const { ttlMs, maxEntries = 2000, now = Date.now } = options;
  const entries = new Map<string, Entry>();
  const generations = new Map<string, number>();
  let resets = 0;
  let enabled = false;
  const generationOf = (tenantId: string) => (generations.get(tenantId) ?? 0) + resets * 2 ** 32;

  const cache: SearchCache = {
    async read<T>(tenantId: string, key: string, load: () => Promise<T>): Promise<T> {
      if (!enabled || ttlMs <= 0) return load();
      const full = `${tenantId}\u0000${key}`;
      const generation = generationOf(tenantId);
      const hit = entries.get(full);
      if (hit && hit.generation === generation && hit.expiresAt > now()) return hit.value as T;
      const value = await load();
      if (generationOf(tenantId) === generation) {
        entries.delete(full);
        entries.set(full, { value, generation, expiresAt: now() + ttlMs });
        if (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
      }
      return value;
    },
    onChange(payload) {
      const tenantId = payload.split(':', 1)[0]!;
      // Its entries are now stale (another generation): each is replaced or evicted in turn.
      generations.set(tenantId, (generations.get(tenantId) ?? 0) + 1);
    },
    clear() {
      resets += 1;
      entries.clear();
    },
    enable() {
      enabled = true;
    },
    get size() {
      return entries.size;
    },
  };
  return cache;
}

/** The cache key of a request's validated query: its parameters in name order, with who asks. */
export function searchKey(route: string, seesAll: boolean, query: Record<string, unknown>): string {
  const names = Object.keys(query).sort();
  return `${route}|${seesAll ? 'staff' : 'shopper'}|${JSON.stringify(names.map((n) => [n, query[n]]))}`;
}
