import { sql } from 'kysely';
import { type JsonColumn, jsonObjects } from '../../platform/db/index.ts';
import { type FieldError, validationFailed } from '../../platform/http/index.ts';
import { isUuid, uuidv7 } from '../../platform/uuidv7.ts';
import type { CatalogTrx } from '../tables.ts';
import type { Product, Variant } from './product-read.ts';
import { type ProductInput, RESERVED_PRODUCT_HANDLES, slugify, type VariantInput } from './product-rules.ts';
import { LIMITS } from './product-schemas.ts';

/**
 * A free handle made from text: its slug, or the slug with the first free "-2", "-3", ... suffix.
 * A slug shaped like a UUID (read as an id in a path) or reserved for a route is never free.
 * Two concurrent creates may still pick the same one; the unique index refuses the second.
 */
export async function freeHandle(
  trx: CatalogTrx,
  table: 'catalog.products' | 'catalog.categories',
  tenantId: string,
  text: string,
  fallback: string,
): Promise<string> {
  const base = slugify(text) || fallback;
  // The base holds only [a-z0-9-], so it has no LIKE wildcard to escape.
  const taken = new Set(
    (
      await trx
        .selectFrom(table)
        .select('handle')
        .where('tenant_id', '=', tenantId)
        .where((eb) => eb.or([eb('handle', '=', base), eb('handle', 'like', `${base}-%`)]))
        .execute()
    ).map((r) => r.handle),
  );
  const usable = !isUuid(base) && !(table === 'catalog.products' && RESERVED_PRODUCT_HANDLES.has(base));
  if (usable && !taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

/**
 * The ids of the product's categories (ids and handles joined), or 400 naming the unknown ones,
 * and naming categoryHandles when the two lists together name more than LIMITS.categories (each
 * list alone is held to it by the schema; a category named both ways counts once).
 */
export async function resolveCategories(
  trx: CatalogTrx,
  tenantId: string,
  input: ProductInput,
): Promise<string[]> {
  const { categoryIds: ids, categoryHandles: handles } = input;
  if (ids.length === 0 && handles.length === 0) return [];
  const rows = await trx
    .selectFrom('catalog.categories')
    .select(['id', 'handle'])
    .where('tenant_id', '=', tenantId)
    .where((eb) =>
      eb.or([
        ...(ids.length > 0 ? [eb('id', 'in', ids)] : []),
        ...(handles.length > 0 ? [eb('handle', 'in', handles)] : []),
      ]),
    )
    .execute();
  const errors: FieldError[] = [];
  ids.forEach((id, i) => {
    if (!rows.some((r) => r.id === id))
      errors.push({ in: 'body', pointer: `/categoryIds/${i}`, message: 'is not a category of this store' });
  });
  handles.forEach((handle, i) => {
    if (!rows.some((r) => r.handle === handle))
      errors.push({
        in: 'body',
        pointer: `/categoryHandles/${i}`,
        message: 'is not a category of this store',
      });
  });
  if (rows.length > LIMITS.categories)
    errors.push({
      in: 'body',
      pointer: '/categoryHandles',
      message: `names ${rows.length} categories together with categoryIds, more than ${LIMITS.categories}`,
    });
  if (errors.length > 0) throw validationFailed(errors);
  return [...new Set(rows.map((r) => r.id))];
}

async function setCategories(trx: CatalogTrx, tenantId: string, productId: string, categoryIds: string[]) {
  await trx.deleteFrom('catalog.product_categories').where('product_id', '=', productId).execute();
  if (categoryIds.length === 0) return;
  await trx
    .insertInto('catalog.product_categories')
    .values(categoryIds.map((category_id) => ({ tenant_id: tenantId, product_id: productId, category_id })))
    .execute();
}

const productColumns = (input: ProductInput, handle: string) => ({
  handle,
  title: input.title,
  description: input.description,
  status: input.status,
  tags: input.tags,
  attributes: JSON.stringify(input.attributes),
  images: JSON.stringify(input.images),
  seo: JSON.stringify(input.seo),
  published_at: input.status === 'active' ? sql<Date>`coalesce(published_at, now())` : null,
});

export const variantColumns = (v: VariantInput, position: number) => ({
  sku: v.sku,
  title: v.title,
  options: JSON.stringify(v.options),
  prices: JSON.stringify(v.prices),
  compare_at_prices: JSON.stringify(v.compareAtPrices),
  weight_grams: v.weightGrams,
  barcode: v.barcode,
  position,
});

/** The kept variants' new values, as replaceVariants's update reads them (jsonObjects). */
const VARIANT_UPDATES: JsonColumn[] = [
  ['id', 'uuid'],
  ['sku', 'text'],
  ['title', 'text'],
  ['options', 'text'],
  ['prices', 'text'],
  ['compare_at_prices', 'text'],
  ['weight_grams', 'integer'],
  ['barcode', 'text'],
  ['position', 'integer'],
];

/** Inserts the product with its variants and categories; returns its id. */
export async function insertProduct(trx: CatalogTrx, tenantId: string, input: ProductInput): Promise<string> {
  const categoryIds = await resolveCategories(trx, tenantId, input);
  const handle =
    input.handle ?? (await freeHandle(trx, 'catalog.products', tenantId, input.title, 'product'));
  const id = uuidv7();
  const now = new Date();
  const { published_at: _, ...columns } = productColumns(input, handle);
  await trx
    .insertInto('catalog.products')
    .values({
      id,
      tenant_id: tenantId,
      ...columns,
      published_at: input.status === 'active' ? now : null,
      created_at: now,
      updated_at: now,
    })
    .execute();
  await trx
    .insertInto('catalog.variants')
    .values(
      (input.variants ?? []).map((v, i) => ({
        id: uuidv7(),
        tenant_id: tenantId,
        product_id: id,
        ...variantColumns(v, i),
        created_at: now,
        updated_at: now,
      })),
    )
    .execute();
  await setCategories(trx, tenantId, id, categoryIds);
  return id;
}

/**
 * Replaces every field of the product (PUT); its handle is kept when none is given. Variants, when
 * given, replace the product's: one with an id or the SKU of a current variant keeps that variant's
 * id; the others are created; current variants not named are deleted. resolved: the input's
 * categories when the caller has resolved them already.
 */
export async function replaceProduct(
  trx: CatalogTrx,
  tenantId: string,
  current: Product,
  input: ProductInput,
  resolved?: string[],
): Promise<void> {
  const categoryIds = resolved ?? (await resolveCategories(trx, tenantId, input));
  await trx
    .updateTable('catalog.products')
    .set({
      ...productColumns(input, input.handle ?? current.handle),
      updated_at: new Date(),
      version: sql`version + 1`,
    })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', current.id)
    .execute();
  if (input.variants !== undefined) await replaceVariants(trx, tenantId, current, input.variants);
  await setCategories(trx, tenantId, current.id, categoryIds);
}

async function replaceVariants(trx: CatalogTrx, tenantId: string, current: Product, wanted: VariantInput[]) {
  const byId = new Map(current.variants.map((v) => [v.id, v]));
  const bySku = new Map(current.variants.map((v) => [v.sku, v]));
  const errors: FieldError[] = [];
  const kept = new Set<string>();
  const plan = wanted.map((v, i) => {
    const match = v.id !== undefined ? byId.get(v.id) : bySku.get(v.sku);
    if (v.id !== undefined && !match)
      errors.push({ in: 'body', pointer: `/variants/${i}/id`, message: 'is not a variant of this product' });
    if (match && kept.has(match.id))
      errors.push({ in: 'body', pointer: `/variants/${i}`, message: 'names a variant another entry keeps' });
    if (match) kept.add(match.id);
    return { v, i, match };
  });
  if (errors.length > 0) throw validationFailed(errors);
  const removed = current.variants.filter((v) => !kept.has(v.id)).map((v) => v.id);
  if (removed.length > 0) await trx.deleteFrom('catalog.variants').where('id', 'in', removed).execute();
  // Kept variants whose SKU changes first take a placeholder, so two of them may swap SKUs.
  const moving = plan.filter((p): p is typeof p & { match: Variant } => !!p.match && p.match.sku !== p.v.sku);
  if (moving.length > 0) {
    await trx
      .updateTable('catalog.variants')
      .set({ sku: sql`'~' || id::text` })
      .where(
        'id',
        'in',
        moving.map((p) => p.match.id),
      )
      .execute();
  }
  const now = new Date();
  // Kept variants in one statement (their SKUs are free: moved ones hold placeholders), then new ones.
  const updates = plan
    .filter((p): p is typeof p & { match: Variant } => !!p.match)
    .map(({ v, i, match }) => ({ id: match.id, ...variantColumns(v, i) }));
  if (updates.length > 0) {
    await sql`update catalog.variants v set sku = u.sku, title = u.title, options = u.options::jsonb,
        prices = u.prices::jsonb, compare_at_prices = u.compare_at_prices::jsonb,
        weight_grams = u.weight_grams, barcode = u.barcode, position = u.position, updated_at = ${now}
      from ${jsonObjects(VARIANT_UPDATES, updates)} as u
      where v.tenant_id = ${tenantId} and v.id = u.id`.execute(trx);
  }
  const inserts = plan.filter((p) => !p.match);
  if (inserts.length > 0) {
    await trx
      .insertInto('catalog.variants')
      .values(
        inserts.map(({ v, i }) => ({
          id: uuidv7(),
          tenant_id: tenantId,
          product_id: current.id,
          ...variantColumns(v, i),
          created_at: now,
          updated_at: now,
        })),
      )
      .execute();
  }
}

/** Marks the product changed (its variants were): version + 1. */
export async function touchProduct(trx: CatalogTrx, tenantId: string, productId: string): Promise<void> {
  await trx
    .updateTable('catalog.products')
    .set({ updated_at: new Date(), version: sql`version + 1` })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', productId)
    .execute();
}

/**
 * Locks the row of the product named by its id or handle for the rest of the transaction (every
 * write to a product takes it first); its id, or undefined when there is none.
 */
export async function lockProduct(
  trx: CatalogTrx,
  tenantId: string,
  ref: string,
): Promise<string | undefined> {
  const uuid = isUuid(ref);
  const row = await trx
    .selectFrom('catalog.products')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where(uuid ? 'id' : 'handle', '=', uuid ? ref.toLowerCase() : ref)
    .forUpdate()
    .executeTakeFirst();
  return row?.id;
}
