import type { FastifyInstance } from 'fastify';
import type { Kysely, Transaction } from 'kysely';
import { withTenant } from '../platform/db/index.ts';
import type { EventBus, EventMeta } from '../platform/events/index.ts';
import type { TenantResolver } from '../platform/http/index.ts';
import type { AppContext, MercatoModule } from '../platform/index.ts';
import { categoryRoutes } from './categories/category-routes.ts';
import { subtreeReindexSubscriber } from './categories/subtree-reindex.ts';
import type { CatalogDeps } from './deps.ts';
import { batchRoutes } from './import/batch-routes.ts';
import { upsertProductRows } from './import/batch-upsert.ts';
import type { RowOutcome } from './import/upsert-row.ts';
import { createProductCache, PRODUCT_CHANGES_CHANNEL } from './products/product-cache.ts';
import { loadProduct } from './products/product-read.ts';
import { productRoutes } from './products/product-routes.ts';
import { variantRoutes } from './products/variant-routes.ts';
import {
  createSearchCache,
  indexProducts,
  registerSearchSubscribers,
  SEARCH_CHANGES_CHANNEL,
  searchRoutes,
} from './search/index.ts';
import { findVariants, type SellableVariant, type VariantRef } from './sellable.ts';
import type { CatalogTables, ProductStatus } from './tables.ts';

/** How long a cached product read lives at most; changes drop it at once on every process (NOTIFY). */
const CACHE_TTL_MS = 300_000;

export type CatalogApi = {
  /** Variants by id and/or SKU (any order; unknown ones are simply absent). */
  /** In `trx` (the caller's transaction of the tenant) when given, else in a transaction of its own. */
  // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
  findVariants(tenantId: string, ref: VariantRef, trx?: Transaction<any>): Promise<SellableVariant[]>;
  /** The status of the tenant's product (none: no such product), read through this process's product cache. */
  productStatus(tenantId: string, productId: string): Promise<ProductStatus | undefined>;
};

export type CatalogModule = MercatoModule &
  CatalogApi & {
    /**
     * Creates or replaces each product by handle, in order (as POST /products/batch does): rows
     * checked in memory, then written 200 per transaction; a bad row is answered and the rest go on.
     */
    importProducts(
      tenantId: string,
      rows: unknown[],
      options?: { meta?: EventMeta; onRow?: (index: number, outcome: RowOutcome) => void },
    ): Promise<RowOutcome[]>;
    deps: CatalogDeps;
  };

/** Products, variants and categories, their reads cached per process, and their search (./search). */
export async function createCatalog(
  ctx: AppContext,
  deps: {
    events: EventBus;
    resolveTenant: TenantResolver;
    /** What this process's product cache may hold (default PRODUCT_CACHE_MAX_CHARS of JSON). */
    productCacheMaxChars?: number;
  },
): Promise<CatalogModule> {
  const db = ctx.db.kysely as Kysely<CatalogTables>;
  const searchCache = createSearchCache({ ttlMs: ctx.config.searchCacheTtlSeconds * 1000 });
  // A product change seen here (written by this process, or announced) drops the shop's searches too.
  const cache = createProductCache({
    ttlMs: CACHE_TTL_MS,
    onTenantChange: searchCache.onChange,
    ...(deps.productCacheMaxChars === undefined ? {} : { maxChars: deps.productCacheMaxChars }),
  });
  const catalog: CatalogDeps = {
    ctx,
    db,
    events: deps.events,
    resolveTenant: deps.resolveTenant,
    cache,
    answers: searchCache,
    indexProducts,
  };
  // The "in stock" facet follows inventory events.
  registerSearchSubscribers(deps.events);
  // A large category's products are rebuilt batch by batch after its rename or move.
  deps.events.subscribe(subtreeReindexSubscriber(deps.events));
  let unlisten: (() => Promise<void>) | undefined;
  return {
    name: 'catalog',
    deps: catalog,
    findVariants: (tenantId, ref, trx) => findVariants(db, tenantId, ref, trx),
    async productStatus(tenantId, productId) {
      const product = await cache.read(tenantId, productId, () =>
        withTenant(db, tenantId, (trx) => loadProduct(trx, tenantId, productId)),
      );
      return product?.status;
    },
    importProducts(tenantId, rows, options = {}) {
      return upsertProductRows(catalog, tenantId, rows, {
        meta: options.meta,
        onRow: options.onRow,
        log: (err) => ctx.logger.error({ err }, 'catalog import row failed'),
      });
    },
    async routes(app: FastifyInstance) {
      await app.register(batchRoutes(catalog));
      await app.register(productRoutes(catalog));
      await app.register(variantRoutes(catalog));
      await app.register(categoryRoutes(catalog));
      await app.register(searchRoutes({ db: ctx.db, resolveTenant: deps.resolveTenant, cache: searchCache }));
    },
    async start() {
      // Products are cached only once this process hears of every change to them.
      const unlistenProducts = await ctx.db.listen(PRODUCT_CHANGES_CHANNEL, cache.onChange, () => {
        cache.clear();
        searchCache.clear();
      });
      const unlistenSearch = await ctx.db.listen(
        SEARCH_CHANGES_CHANNEL,
        searchCache.onChange,
        searchCache.clear,
      );
      unlisten = async () => {
        await unlistenProducts();
        await unlistenSearch();
      };
      cache.enable();
      searchCache.enable();
    },
    async stop() {
      await unlisten?.();
    },
  };
}
