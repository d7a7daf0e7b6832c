export type { Category } from './categories/category-read.ts';
export type { ProductIndexer } from './deps.ts';
export type { RowOutcome } from './import/upsert-row.ts';
export { type CatalogApi, type CatalogModule, createCatalog } from './module.ts';
export { PRODUCT_CHANGES_CHANNEL } from './products/product-cache.ts';
export type { CategoryRef, Product, Variant } from './products/product-read.ts';
export { reindexProducts } from './reindex.ts';
export type { SellableVariant, VariantRef } from './sellable.ts';
export type { CatalogTables, ProductStatus } from './tables.ts';
