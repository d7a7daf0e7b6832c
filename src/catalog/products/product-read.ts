import type { Selectable } from 'kysely';
import { isoTime as iso } from '../../platform/db/index.ts';
import { isUuid } from '../../platform/uuidv7.ts';
import type { CatalogTrx, Image, ProductStatus, ProductsTable, Seo, VariantsTable } from '../tables.ts';
import type { VariantInput } from './product-rules.ts';

/** A variant as read: the fields it was written with, and where and when it stands. */
export type Variant = Omit<VariantInput, 'id'> & {
  id: string;
  productId: string;
  position: number;
  createdAt: string;
  updatedAt: string;
};

export type CategoryRef = { id: string; name: string; handle: string };

/** A product as GET /products/{id} answers it (and as its events carry it). */
export type Product = {
  id: string;
  handle: string;
  title: string;
  description: string;
  status: ProductStatus;
  tags: string[];
  attributes: Record<string, unknown>;
  images: Image[];
  seo: Seo;
  categories: CategoryRef[];
  variants: Variant[];
  publishedAt: string | null;
  createdAt: string;
  updatedAt: string;
  version: number;
};

// jsonb arrives parsed from pg and PGlite; text only if a driver ever hands it over unparsed.
const json = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T;

export function toVariant(row: Selectable<VariantsTable>): Variant {
  return {
    id: row.id,
    productId: row.product_id,
    sku: row.sku,
    title: row.title,
    options: json(row.options),
    prices: json(row.prices),
    compareAtPrices: json(row.compare_at_prices),
    weightGrams: row.weight_grams,
    barcode: row.barcode,
    position: row.position,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

function toProduct(row: Selectable<ProductsTable>, categories: CategoryRef[], variants: Variant[]): Product {
  return {
    id: row.id,
    handle: row.handle,
    title: row.title,
    description: row.description,
    status: row.status,
    tags: row.tags,
    attributes: json(row.attributes),
    images: json(row.images),
    seo: json(row.seo),
    categories,
    variants,
    publishedAt: row.published_at === null ? null : iso(row.published_at),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    version: row.version,
  };
}

/** The products with these ids, with their variants and categories (absent ids are skipped). */
export async function loadProducts(trx: CatalogTrx, tenantId: string, ids: string[]): Promise<Product[]> {
  if (ids.length === 0) return [];
  const [rows, variants, categories] = await Promise.all([
    trx
      .selectFrom('catalog.products')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', 'in', ids)
      .execute(),
    trx
      .selectFrom('catalog.variants')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('product_id', 'in', ids)
      .orderBy('position')
      .orderBy('id')
      .execute(),
    trx
      .selectFrom('catalog.product_categories as pc')
      .innerJoin('catalog.categories as c', 'c.id', 'pc.category_id')
      .select(['pc.product_id', 'c.id', 'c.name', 'c.handle'])
      .where('pc.tenant_id', '=', tenantId)
      .where('pc.product_id', 'in', ids)
      .orderBy('c.position')
      .orderBy('c.name')
      .execute(),
  ]);
  const variantsOf = new Map<string, Variant[]>();
  for (const v of variants) {
    const list = variantsOf.get(v.product_id) ?? [];
    list.push(toVariant(v));
    variantsOf.set(v.product_id, list);
  }
  const categoriesOf = new Map<string, CategoryRef[]>();
  for (const c of categories) {
    const list = categoriesOf.get(c.product_id) ?? [];
    list.push({ id: c.id, name: c.name, handle: c.handle });
    categoriesOf.set(c.product_id, list);
  }
  const byId = new Map(
    rows.map((row) => [row.id, toProduct(row, categoriesOf.get(row.id) ?? [], variantsOf.get(row.id) ?? [])]),
  );
  return ids.flatMap((id) => byId.get(id) ?? []);
}

/** The id of the product named by its id or its handle, or undefined. */
export async function findProductId(
  trx: CatalogTrx,
  tenantId: string,
  ref: string,
): Promise<string | undefined> {
  const row = await trx
    .selectFrom('catalog.products')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where(isUuid(ref) ? 'id' : 'handle', '=', isUuid(ref) ? ref.toLowerCase() : ref)
    .executeTakeFirst();
  return row?.id;
}

/** The product named by its id or handle, with variants and categories, or undefined. */
export async function loadProduct(
  trx: CatalogTrx,
  tenantId: string,
  ref: string,
): Promise<Product | undefined> {
  const id = await findProductId(trx, tenantId, ref);
  if (id === undefined) return undefined;
  return (await loadProducts(trx, tenantId, [id]))[0];
}
