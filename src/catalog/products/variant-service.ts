import type { EventMeta } from '../../platform/events/index.ts';
import { AppError } from '../../platform/http/index.ts';
import { uuidv7 } from '../../platform/uuidv7.ts';
import type { CatalogDeps } from '../deps.ts';
import type { CatalogTrx } from '../tables.ts';
import type { Product, Variant } from './product-read.ts';
import { optionKey, type VariantInput } from './product-rules.ts';
import { LIMITS } from './product-schemas.ts';
import { announceProduct, lockedProduct, writeProducts } from './product-service.ts';
import { touchProduct, variantColumns } from './product-write.ts';

/** The SKU of a variant body, at /sku; another variant of the same product may hold it. */
const oneSku = (input: VariantInput) => ({ skus: [input.sku], pointer: () => '/sku', ownVariants: true });

type Options = { expectedVersion?: number | undefined; meta?: EventMeta | undefined };

function variantOf(product: Product, variantId: string): Variant {
  const variant = product.variants.find((v) => v.id === variantId.toLowerCase());
  if (!variant) throw new AppError('NOT_FOUND', `variant ${variantId} of product ${product.id} not found`);
  return variant;
}

function refuseSameOptions(product: Product, input: VariantInput, except?: string): void {
  const key = optionKey(input.options);
  const twin = product.variants.find((v) => v.id !== except && optionKey(v.options) === key);
  if (twin)
    throw new AppError('CONFLICT', `variant ${twin.id} (${twin.sku}) already has these option values`, {
      errors: [{ in: 'body', pointer: '/options', message: `are the same as variant ${twin.sku}'s` }],
    });
}

/** After a variant change: version + 1, search documents rebuilt, mercato.product.updated. */
async function afterVariantChange(
  deps: CatalogDeps,
  trx: CatalogTrx,
  tenantId: string,
  productId: string,
  meta: EventMeta | undefined,
): Promise<Product> {
  await touchProduct(trx, tenantId, productId);
  return announceProduct(deps, trx, tenantId, productId, 'updated', meta);
}

/** Adds a variant at the end of the product's list; 409 VARIANT_LIMIT past 100. */
export async function addVariant(
  deps: CatalogDeps,
  tenantId: string,
  ref: string,
  input: VariantInput,
  options: Options,
): Promise<Variant> {
  return writeProducts(
    deps,
    tenantId,
    async (trx, touched) => {
      const product = await lockedProduct(trx, tenantId, ref, options.expectedVersion);
      if (product.variants.length >= LIMITS.variants)
        throw new AppError('VARIANT_LIMIT', `product ${product.id} already has ${LIMITS.variants} variants`);
      refuseSameOptions(product, input);
      touched.add(product.id);
      const id = uuidv7();
      const now = new Date();
      const position = Math.max(-1, ...product.variants.map((v) => v.position)) + 1;
      await trx
        .insertInto('catalog.variants')
        .values({
          id,
          tenant_id: tenantId,
          product_id: product.id,
          ...variantColumns(input, position),
          created_at: now,
          updated_at: now,
        })
        .execute();
      return variantOf(await afterVariantChange(deps, trx, tenantId, product.id, options.meta), id);
    },
    oneSku(input),
  );
}

/** Replaces every field of one variant (its position stays). */
export async function updateVariant(
  deps: CatalogDeps,
  tenantId: string,
  ref: string,
  variantId: string,
  input: VariantInput,
  options: Options,
): Promise<Variant> {
  return writeProducts(
    deps,
    tenantId,
    async (trx, touched) => {
      const product = await lockedProduct(trx, tenantId, ref, options.expectedVersion);
      const current = variantOf(product, variantId);
      refuseSameOptions(product, input, current.id);
      touched.add(product.id);
      await trx
        .updateTable('catalog.variants')
        .set({ ...variantColumns(input, current.position), updated_at: new Date() })
        .where('id', '=', current.id)
        .execute();
      return variantOf(await afterVariantChange(deps, trx, tenantId, product.id, options.meta), current.id);
    },
    oneSku(input),
  );
}

/** Deletes one variant; a product keeps at least one (409 VARIANT_LIMIT). */
export async function removeVariant(
  deps: CatalogDeps,
  tenantId: string,
  ref: string,
  variantId: string,
  options: Options,
): Promise<void> {
  await writeProducts(deps, tenantId, async (trx, touched) => {
    const product = await lockedProduct(trx, tenantId, ref, options.expectedVersion);
    const current = variantOf(product, variantId);
    if (product.variants.length <= 1)
      throw new AppError(
        'VARIANT_LIMIT',
        `variant ${current.id} is the last of product ${product.id}; delete the product instead`,
      );
    touched.add(product.id);
    await trx.deleteFrom('catalog.variants').where('id', '=', current.id).execute();
    await afterVariantChange(deps, trx, tenantId, product.id, options.meta);
  });
}
