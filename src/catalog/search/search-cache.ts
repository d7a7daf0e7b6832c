/** The channel search document changes are announced on (migration 0021): the tenant id. */
export const SEARCH_CHANGES_CHANNEL = 'mercato_catalog_search';

/** What a process's cached answers may weigh together at most (UTF-16 code units of their JSON). */
export const SEARCH_CACHE_MAX_CHARS = 32 * 1024 * 1024;

export type SearchCache = {
  /**
   * The answer (its JSON) cached under key for the tenant, or what load() returns: cached unless
   * the tenant's catalog changed while it loaded, so a slow search never keeps what a change removed.
   */
  read(tenantId: string, key: string, load: () => Promise<string>): Promise<string>;
  /** A NOTIFY payload ('<tenant id>' or '<tenant id>:…'): drops every answer of that tenant. */
  onChange(payload: string): void;
  clear(): void;
  /** Reads go straight to load() until enable() (called once change notifications flow). */
  enable(): void;
  readonly size: number;
};

type Entry = { body: string; generation: number; expiresAt: number };

/**
 * Search answers per process, as Elasticsearch's request cache keeps a shard's answers until its
 * next refresh: a shop's answers live ttlMs at most and are dropped as soon as anything of its
 * catalog changes (a generation per tenant, bumped by each announcement), on every process. The
 * answers are kept as JSON, so a hit is not serialized again and the cache's weight is known: at
 * most maxChars together (oldest out first), and no single answer over a sixteenth of it, so
 * anonymous shoppers asking many different queries cannot grow it past that. ttlMs 0 turns it off.
 */
export function createSearchCache(options: {
  ttlMs: number;
  maxChars?: number;
  now?: () => number;
}): SearchCache {
  const { ttlMs, maxChars = SEARCH_CACHE_MAX_CHARS, now = Date.now } = options;
  const entries = new Map<string, Entry>();
  // One counter for every change: a tenant's generation is the count at its last change or at the
  // last clear, whichever is later, so it only ever grows.
  let changes = 0;
  let clearedAt = 0;
  const changedAt = new Map<string, number>();
  let chars = 0;
  let enabled = false;
  const generationOf = (tenantId: string) => Math.max(changedAt.get(tenantId) ?? 0, clearedAt);
  const remove = (key: string) => {
    const entry = entries.get(key);
    if (!entry) return;
    entries.delete(key);
    chars -= entry.body.length;
  };

  const cache: SearchCache = {
    async read(tenantId, key, load) {
      if (!enabled || ttlMs <= 0) return load();
      const full = `${tenantId}\u0000${key}`;
      const generation = generationOf(tenantId);
      const hit = entries.get(full);
      if (hit && hit.generation === generation && hit.expiresAt > now()) return hit.body;
      const body = await load();
      if (generationOf(tenantId) === generation && body.length <= maxChars / 16) {
        remove(full);
        entries.set(full, { body, generation, expiresAt: now() + ttlMs });
        chars += body.length;
        while (chars > maxChars) remove(entries.keys().next().value as string);
      }
      return body;
    },
    onChange(payload) {
      // Its entries are now stale (another generation): each is replaced or evicted in turn.
      const tenantId = payload.split(':', 1)[0]!;
      changes += 1;
      changedAt.set(tenantId, changes);
    },
    clear() {
      changes += 1;
      clearedAt = changes;
      changedAt.clear();
      entries.clear();
      chars = 0;
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
