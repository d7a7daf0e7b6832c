import { withTenant } from '../../platform/db/index.ts';
import type { EventMeta } from '../../platform/events/index.ts';
import { AppError } from '../../platform/http/index.ts';
import { catalogConflict } from '../conflicts.ts';
import type { CatalogDeps } from '../deps.ts';
import type { CatalogTrx } from '../tables.ts';
import { loadProducts, type Product } from './product-read.ts';
import { type ProductInput, refuseDuplicateSkus } from './product-rules.ts';
import { insertProduct, lockProduct, replaceProduct } from './product-write.ts';

export type ProductEventVerb = 'created' | 'updated' | 'deleted';

/** Publishes mercato.product.<verb> with the product as data, in trx. */
export async function publishProduct(
  deps: CatalogDeps,
  trx: CatalogTrx,
  tenantId: string,
  verb: ProductEventVerb,
  product: Product,
  meta: EventMeta | undefined,
): Promise<void> {
  await deps.events.publish(
    trx,
    tenantId,
    'product-events',
    [{ type: `mercato.product.${verb}`, subject: product.id, data: product }],
    meta,
  );
}

/** After a write of product `id`: reread, its search documents rebuilt, mercato.product.<verb> published. */
export async function announceProduct(
  deps: CatalogDeps,
  trx: CatalogTrx,
  tenantId: string,
  id: string,
  verb: 'created' | 'updated',
  meta: EventMeta | undefined,
): Promise<Product> {
  const product = await reread(trx, tenantId, id);
  await deps.indexProducts(trx, tenantId, [id]);
  await publishProduct(deps, trx, tenantId, verb, product, meta);
  return product;
}

/**
 * The SKUs a write gives its variants, and where each is in the request body. ownVariants: the
 * written product's other variants may hold them (a variant route), where a product write's SKUs
 * held by its own product are the ones it keeps.
 */
export type SkusWritten = { skus: string[]; pointer: (sku: string) => string; ownVariants?: boolean };

/**
 * Runs a write of one tenant's products: its unique violations become HANDLE_TAKEN / SKU_TAKEN,
 * and this process's cache drops the products it names once it has committed (other processes
 * hear of it by NOTIFY).
 */
export async function writeProducts<T>(
  deps: CatalogDeps,
  tenantId: string,
  fn: (trx: CatalogTrx, touched: Set<string>) => Promise<T>,
  written?: SkusWritten,
): Promise<T> {
  const touched = new Set<string>();
  try {
    return await withTenant(deps.db, tenantId, (trx) => fn(trx, touched));
  } catch (error) {
    const mapped = catalogConflict(error);
    if (mapped instanceof AppError && mapped.code === 'SKU_TAKEN' && written)
      throw await namedSkuConflict(deps, tenantId, written, [...touched], mapped);
    throw mapped;
  } finally {
    for (const id of touched) deps.cache.invalidate(tenantId, id);
  }
}

/**
 * SKU_TAKEN naming the SKU and its field. Under row-level security PostgreSQL leaves the key out
 * of a unique violation, so the SKU held by another product is looked up once the write is over.
 */
async function namedSkuConflict(
  deps: CatalogDeps,
  tenantId: string,
  written: SkusWritten,
  ownProducts: string[],
  error: AppError,
): Promise<AppError> {
  if (written.skus.length === 0) return error;
  const held = await withTenant(deps.db, tenantId, (trx) => {
    let query = trx
      .selectFrom('catalog.variants')
      .select('sku')
      .where('tenant_id', '=', tenantId)
      .where('sku', 'in', written.skus);
    if (ownProducts.length > 0 && !written.ownVariants)
      query = query.where('product_id', 'not in', ownProducts);
    return query.execute();
  });
  const sku = written.skus.find((s) => held.some((h) => h.sku === s));
  if (sku === undefined) return error;
  return new AppError(
    'SKU_TAKEN',
    `SKU "${sku}" is already used by another variant`,
    { sku, errors: [{ in: 'body', pointer: written.pointer(sku), message: 'is taken by another variant' }] },
    { cause: error.cause },
  );
}

/** The SKUs of a product body, each at /variants/{i}/sku. */
export function variantSkus(input: ProductInput): SkusWritten {
  const skus = (input.variants ?? []).map((v) => v.sku);
  return { skus, pointer: (sku) => `/variants/${skus.indexOf(sku)}/sku` };
}

/** The product, read in trx after a change, or a 500 when it vanished (it cannot under the row lock). */
export async function reread(trx: CatalogTrx, tenantId: string, id: string): Promise<Product> {
  const [product] = await loadProducts(trx, tenantId, [id]);
  if (!product) throw new Error(`product ${id} vanished inside its own transaction`);
  return product;
}

/** Creates a product in trx: indexed for search, announced as mercato.product.created. */
export async function createProductIn(
  deps: CatalogDeps,
  trx: CatalogTrx,
  tenantId: string,
  input: ProductInput,
  meta: EventMeta | undefined,
): Promise<Product> {
  refuseDuplicateSkus(input.variants);
  const id = await insertProduct(trx, tenantId, input);
  return announceProduct(deps, trx, tenantId, id, 'created', meta);
}

/**
 * Replaces a locked product in trx (PUT semantics): indexed, announced as mercato.product.updated.
 * categoryIds: the input's categories, when the caller has resolved them already.
 */
export async function replaceProductIn(
  deps: CatalogDeps,
  trx: CatalogTrx,
  tenantId: string,
  current: Product,
  input: ProductInput,
  meta: EventMeta | undefined,
  categoryIds?: string[],
): Promise<Product> {
  refuseDuplicateSkus(input.variants);
  await replaceProduct(trx, tenantId, current, input, categoryIds);
  return announceProduct(deps, trx, tenantId, current.id, 'updated', meta);
}

/**
 * The product named by id or handle, locked for the rest of trx, or 404; with `expectedVersion`,
 * 412 PRECONDITION_FAILED unless it is at that version.
 */
export async function lockedProduct(
  trx: CatalogTrx,
  tenantId: string,
  ref: string,
  expectedVersion?: number | undefined,
): Promise<Product> {
  const id = await lockProduct(trx, tenantId, ref);
  if (id === undefined) throw new AppError('NOT_FOUND', `product ${ref} not found`);
  const product = await reread(trx, tenantId, id);
  checkVersion(product, expectedVersion);
  return product;
}

export async function createProduct(
  deps: CatalogDeps,
  tenantId: string,
  input: ProductInput,
  meta?: EventMeta,
): Promise<Product> {
  return writeProducts(
    deps,
    tenantId,
    async (trx, touched) => {
      const product = await createProductIn(deps, trx, tenantId, input, meta);
      touched.add(product.id);
      return product;
    },
    variantSkus(input),
  );
}

/** Parses If-Match: "3", W/"3" or 3; anything else is a 400. */
export function expectedVersion(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*(?:W\/)?"?(\d{1,9})"?\s*$/.exec(header);
  if (!match)
    throw new AppError('VALIDATION_FAILED', 'If-Match must name a product version, for example "3"', {
      errors: [{ in: 'headers', pointer: '/if-match', message: 'must be a product version such as "3"' }],
    });
  return Number(match[1]);
}

export function checkVersion(product: Product, expected: number | undefined): void {
  if (expected !== undefined && expected !== product.version)
    throw new AppError(
      'PRECONDITION_FAILED',
      `product ${product.id} is at version ${product.version}, not ${expected}`,
      {
        currentVersion: product.version,
      },
    );
}

export async function updateProduct(
  deps: CatalogDeps,
  tenantId: string,
  ref: string,
  input: ProductInput,
  options: { expectedVersion?: number | undefined; meta?: EventMeta | undefined },
): Promise<Product> {
  return writeProducts(
    deps,
    tenantId,
    async (trx, touched) => {
      const current = await lockedProduct(trx, tenantId, ref, options.expectedVersion);
      touched.add(current.id);
      return replaceProductIn(deps, trx, tenantId, current, input, options.meta);
    },
    variantSkus(input),
  );
}

export async function deleteProduct(
  deps: CatalogDeps,
  tenantId: string,
  ref: string,
  options: { expectedVersion?: number | undefined; meta?: EventMeta | undefined },
): Promise<Product> {
  return writeProducts(deps, tenantId, async (trx, touched) => {
    const current = await lockedProduct(trx, tenantId, ref, options.expectedVersion);
    touched.add(current.id);
    await trx.deleteFrom('catalog.products').where('id', '=', current.id).execute();
    await deps.indexProducts(trx, tenantId, [current.id]);
    await publishProduct(deps, trx, tenantId, 'deleted', current, options.meta);
    return current;
  });
}
