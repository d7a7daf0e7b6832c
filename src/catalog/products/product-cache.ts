import type { Product } from './product-read.ts';

/** The channel every product change is announced on (migration 0016): '<tenant id>:<product id>' or '<tenant id>:*'. */
export const PRODUCT_CHANGES_CHANNEL = 'mercato_catalog_products';

/**
 * What a process's cached products may weigh together at most (UTF-16 code units of their JSON).
 * A product may hold about 600 KB of JSON (100 variants, 50 images of 2 KB URLs, 20,000 characters
 * of description), so 10,000 entries alone allowed gigabytes to one tenant's catalog.
 */
export const PRODUCT_CACHE_MAX_CHARS = 32 * 1024 * 1024;

export type ProductCache = {
  /**
   * The cached product named by its id or handle, or what load() returns (cached unless something
   * changed meanwhile). It holds the staff view: the caller decides what a shopper may see.
   */
  read(tenantId: string, ref: string, load: () => Promise<Product | undefined>): Promise<Product | undefined>;
  /** A NOTIFY payload: drops one product of a tenant, or all of the tenant's ('*'). */
  onChange(payload: string): void;
  invalidate(tenantId: string, productId: string): void;
  clear(): void;
  /** Reads go straight to load() until enable() (called once change notifications flow). */
  enable(): void;
  readonly size: number;
  /** What the cached products weigh together (UTF-16 code units of their JSON). */
  readonly chars: number;
};

type Entry = { product: Product; tenantId: string; expiresAt: number; chars: number };

/**
 * A per-process cache of product reads, by id and by handle. Entries live ttlMs at most and are
 * dropped when the database announces a change to the product, on every process. A load that
 * overlapped any invalidation is not cached, so a slow read never puts back what a change removed.
 * The entries weigh maxChars at most together (oldest out first), however big one tenant makes its
 * products.
 */
export function createProductCache(options: {
  ttlMs: number;
  maxEntries?: number;
  maxChars?: number;
  now?: () => number;
  /** Told the tenant of every change dropped here (the search cache follows the products). */
  onTenantChange?: (tenantId: string) => void;
}): ProductCache {
  const { ttlMs, maxEntries = 10_000, maxChars = PRODUCT_CACHE_MAX_CHARS, now = Date.now } = options;
  const { onTenantChange } = options;
  // `${tenantId}:${productId}` -> entry; `${tenantId}/${handle}` -> product id.
  const entries = new Map<string, Entry>();
  const handles = new Map<string, string>();
  let invalidations = 0;
  let enabled = false;
  let chars = 0;

  const drop = (key: string) => {
    const entry = entries.get(key);
    if (!entry) return;
    entries.delete(key);
    chars -= entry.chars;
    handles.delete(`${entry.tenantId}/${entry.product.handle}`);
  };
  const cache: ProductCache = {
    async read(tenantId, ref, load) {
      if (!enabled || ttlMs <= 0) return load();
      const id = handles.get(`${tenantId}/${ref}`) ?? ref.toLowerCase();
      const hit = entries.get(`${tenantId}:${id}`);
      if (
        hit &&
        hit.expiresAt > now() &&
        (hit.product.id === ref.toLowerCase() || hit.product.handle === ref)
      )
        return hit.product;
      const before = invalidations;
      const product = await load();
      if (product && before === invalidations) {
        const key = `${tenantId}:${product.id}`;
        drop(key);
        const weight = JSON.stringify(product).length;
        if (weight <= maxChars) {
          entries.set(key, { product, tenantId, expiresAt: now() + ttlMs, chars: weight });
          handles.set(`${tenantId}/${product.handle}`, product.id);
          chars += weight;
          while (entries.size > maxEntries || chars > maxChars) drop(entries.keys().next().value as string);
        }
      }
      return product;
    },
    onChange(payload) {
      const colon = payload.indexOf(':');
      if (colon < 0) return cache.clear();
      const tenantId = payload.slice(0, colon);
      const productId = payload.slice(colon + 1);
      if (productId !== '*') return cache.invalidate(tenantId, productId);
      onTenantChange?.(tenantId);
      invalidations += 1;
      for (const [key, entry] of entries) if (entry.tenantId === tenantId) drop(key);
    },
    invalidate(tenantId, productId) {
      onTenantChange?.(tenantId);
      invalidations += 1;
      drop(`${tenantId}:${productId}`);
    },
    clear() {
      invalidations += 1;
      entries.clear();
      handles.clear();
      chars = 0;
    },
    enable() {
      enabled = true;
    },
    get size() {
      return entries.size;
    },
    get chars() {
      return chars;
    },
  };
  return cache;
}
