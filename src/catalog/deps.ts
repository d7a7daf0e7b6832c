import type { EventBus } from '../platform/events/index.ts';
import type { TenantResolver } from '../platform/http/index.ts';
import type { AppContext } from '../platform/index.ts';
import type { ProductCache } from './products/product-cache.ts';
import type { SearchCache } from './search/index.ts';
import type { CatalogDb, CatalogTrx } from './tables.ts';

/** Rebuilds the search documents of these products in the caller's transaction (src/catalog/search). */
export type ProductIndexer = (trx: CatalogTrx, tenantId: string, productIds: string[]) => Promise<void>;

/** What the catalog's routes and services receive. */
export type CatalogDeps = {
  ctx: AppContext;
  db: CatalogDb;
  events: EventBus;
  resolveTenant: TenantResolver;
  cache: ProductCache;
  /** Answers kept as JSON per tenant until its catalog changes (search, and the category pages). */
  answers: SearchCache;
  indexProducts: ProductIndexer;
};
