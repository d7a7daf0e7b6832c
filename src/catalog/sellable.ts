import { withTenant } from '../platform/db/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import type { CatalogDb, CatalogTrx, Image, ProductStatus } from './tables.ts';

/** A variant as the cart sells it: its prices, its product's title, handle and status. */
export type SellableVariant = {
  variantId: string;
  productId: string;
  sku: string;
  productTitle: string;
  variantTitle: string;
  productHandle: string;
  productStatus: ProductStatus;
  /** ISO 4217 currency -> integer minor units. */
  prices: Record<string, number>;
  compareAtPrices: Record<string, number>;
  options: Record<string, string>;
  weightGrams: number | null;
  /** The product's first image URL. */
  image: string | null;
};

export type VariantRef = { ids?: string[]; skus?: string[] };

/** The most ids and SKUs one call looks up. */
const MAX_REFS = 1_000;

const json = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T;

/** Variants of the tenant by id and/or SKU, in any order; unknown ones (and ids that are no UUID) are absent. */
export async function findVariants(
  db: CatalogDb,
  tenantId: string,
  ref: VariantRef,
  trx?: CatalogTrx,
): Promise<SellableVariant[]> {
  const ids = [...new Set((ref.ids ?? []).filter(isUuid).map((id) => id.toLowerCase()))].slice(0, MAX_REFS);
  const skus = [...new Set(ref.skus ?? [])].slice(0, MAX_REFS);
  if (ids.length === 0 && skus.length === 0) return [];
  const read = (trx: CatalogTrx) =>
    trx
      .selectFrom('catalog.variants as v')
      .innerJoin('catalog.products as p', 'p.id', 'v.product_id')
      .select([
        'v.id',
        'v.product_id',
        'v.sku',
        'v.title',
        'v.options',
        'v.prices',
        'v.compare_at_prices',
        'v.weight_grams',
        'p.title as product_title',
        'p.handle',
        'p.status',
        'p.images',
      ])
      .where('v.tenant_id', '=', tenantId)
      .where((eb) =>
        eb.or([
          ...(ids.length > 0 ? [eb('v.id', 'in', ids)] : []),
          ...(skus.length > 0 ? [eb('v.sku', 'in', skus)] : []),
        ]),
      )
      .execute();
  const rows = await (trx ? read(trx) : withTenant(db, tenantId, read));
  return rows.map((r) => ({
    variantId: r.id,
    productId: r.product_id,
    sku: r.sku,
    productTitle: r.product_title,
    variantTitle: r.title,
    productHandle: r.handle,
    productStatus: r.status,
    prices: json(r.prices),
    compareAtPrices: json(r.compare_at_prices),
    options: json(r.options),
    weightGrams: r.weight_grams,
    image: json<Image[]>(r.images)[0]?.url ?? null,
  }));
}
