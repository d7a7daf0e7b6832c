import type { ColumnType, Generated, Kysely, Transaction } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** A jsonb column: read parsed, written as JSON text. */
type Json<T> = ColumnType<T, string, string>;

export type ProductStatus = 'draft' | 'active' | 'archived';
export type Image = { url: string; alt: string };
export type Seo = { title?: string; description?: string };

/** Migration 0016. */
export type ProductsTable = {
  id: string;
  tenant_id: string;
  handle: string;
  title: string;
  description: string;
  status: ProductStatus;
  tags: string[];
  attributes: Json<Record<string, unknown>>;
  images: Json<Image[]>;
  seo: Json<Seo>;
  published_at: Timestamp | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  version: Generated<number>;
};

export type VariantsTable = {
  id: string;
  tenant_id: string;
  product_id: string;
  sku: string;
  title: string;
  options: Json<Record<string, string>>;
  /** ISO 4217 code -> integer minor units. */
  prices: Json<Record<string, number>>;
  compare_at_prices: Json<Record<string, number>>;
  weight_grams: number | null;
  barcode: string | null;
  position: number;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type CategoriesTable = {
  id: string;
  tenant_id: string;
  parent_id: string | null;
  name: string;
  handle: string;
  description: string;
  position: number;
  created_at: Timestamp;
  updated_at: Timestamp;
  /** Migration 0061: the search rebuild its last rename or move started (subtree-reindex.ts). */
  reindex_token: ColumnType<string | null, string | null | undefined, string | null>;
};

export type ProductCategoriesTable = {
  tenant_id: string;
  product_id: string;
  category_id: string;
};

export type CatalogTables = {
  'catalog.products': ProductsTable;
  'catalog.variants': VariantsTable;
  'catalog.categories': CategoriesTable;
  'catalog.product_categories': ProductCategoriesTable;
};

/** A transaction of one tenant (withTenant) over the catalog's tables. */
export type CatalogTrx = Transaction<CatalogTables>;
export type CatalogDb = Kysely<CatalogTables>;
