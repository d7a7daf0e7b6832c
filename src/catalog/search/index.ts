/**
 * Catalog search: search documents rebuilt in the transaction of every catalog change, and the
 * routes that read them (GET /products, /products/suggest, /products/{id}/related). See README.md.
 */

export { sweepDictionary } from './dictionary.ts';
export {
  FIXTURE_CATEGORIES,
  type FixtureCategory,
  type FixtureProduct,
  generateCatalog,
} from './fixture-catalog.ts';
export { indexProducts } from './indexer.ts';
export { createSearchCache, SEARCH_CHANGES_CHANNEL, type SearchCache } from './search-cache.ts';
export { type SearchDeps, searchRoutes } from './search-routes.ts';
export { applyInventoryEvent, registerSearchSubscribers } from './stock-levels.ts';
