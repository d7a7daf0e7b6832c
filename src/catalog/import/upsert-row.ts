import type { EventMeta } from '../../platform/events/index.ts';
import { AppError, type ErrorCode, type FieldError, jsonProblem } from '../../platform/http/index.ts';
import { isUuid } from '../../platform/uuidv7.ts';
import type { CatalogDeps } from '../deps.ts';
import { findProductId, type Product } from '../products/product-read.ts';
import {
  checkProductRow,
  type ProductInput,
  RESERVED_PRODUCT_HANDLES,
  slugify,
} from '../products/product-rules.ts';
import {
  createProductIn,
  lockedProduct,
  replaceProductIn,
  variantSkus,
  writeProducts,
} from '../products/product-service.ts';
import { resolveCategories } from '../products/product-write.ts';

/** How one batch or import row ended. */
export type RowOutcome =
  | { status: 'created' | 'updated' | 'unchanged'; id: string; handle: string }
  | { status: 'failed'; code: ErrorCode; detail: string; errors: FieldError[] };

/** JSON with object keys sorted, so two values compare equal whatever order their keys came in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const variantsOf = (variants: ProductInput['variants'] & object) =>
  variants.map((v) => ({
    sku: v.sku,
    title: v.title,
    options: v.options,
    prices: v.prices,
    compareAtPrices: v.compareAtPrices,
    weightGrams: v.weightGrams,
    barcode: v.barcode,
  }));

/** Whether writing input over current would change nothing. */
export function sameAs(current: Product, input: ProductInput, categoryIds: string[]): boolean {
  const wanted = {
    handle: input.handle,
    title: input.title,
    description: input.description,
    status: input.status,
    tags: input.tags,
    attributes: input.attributes,
    images: input.images,
    seo: input.seo,
    categories: [...categoryIds].sort(),
    variants: variantsOf(input.variants ?? []),
  };
  const have = {
    handle: current.handle,
    title: current.title,
    description: current.description,
    status: current.status,
    tags: current.tags,
    attributes: current.attributes,
    images: current.images,
    seo: current.seo,
    categories: current.categories.map((c) => c.id).sort(),
    variants: variantsOf(current.variants),
  };
  return canonical(wanted) === canonical(have);
}

export function failed(error: unknown): RowOutcome {
  if (error instanceof AppError)
    return { status: 'failed', code: error.code, detail: error.message, errors: error.extras.errors ?? [] };
  return {
    status: 'failed',
    code: 'INTERNAL',
    detail: 'the row could not be written; try it again',
    errors: [],
  };
}

/** A row checked in memory: its input with its handle, or how it failed (nothing written). */
export type PreparedRow = { input: ProductInput & { handle: string } } | { failed: RowOutcome };

/** Checks one row without the database: its fields, and the handle it is upserted by. */
export function prepareProductRow(raw: unknown): PreparedRow {
  // What the API's JSON guard refuses before a body reaches a route (U+0000, lone surrogates,
  // nesting, ±Infinity), refused here too: file imports do not pass through it.
  const problem = jsonProblem(raw);
  if (problem) return { failed: failed(problem) };
  const checked = checkProductRow(raw);
  if (!checked.input)
    return {
      failed: {
        status: 'failed',
        code: 'VALIDATION_FAILED',
        detail: `${checked.errors.length} field(s) failed validation`,
        errors: checked.errors,
      },
    };
  const handle = checked.input.handle ?? slugify(checked.input.title);
  if (handle === '' || isUuid(handle) || RESERVED_PRODUCT_HANDLES.has(handle))
    return {
      failed: {
        status: 'failed',
        code: 'VALIDATION_FAILED',
        detail: 'the row needs a handle: its title makes none',
        errors: [
          {
            in: 'body',
            pointer: '/handle',
            message:
              'is required when the title has no Latin letters or digits, or makes one shaped like an id or reserved',
          },
        ],
      },
    };
  return { input: { ...checked.input, handle } };
}

/**
 * Creates or replaces one product by its handle (given, else made from the title): a product with
 * that handle is replaced as PUT replaces it (variants matched by SKU), and one whose content would
 * not change is left alone ('unchanged': no new version, no event). Never throws for a bad row.
 */
export async function upsertProductRow(
  deps: CatalogDeps,
  tenantId: string,
  raw: unknown,
  meta: EventMeta | undefined,
  log?: (error: unknown) => void,
): Promise<RowOutcome> {
  const prepared = prepareProductRow(raw);
  if ('failed' in prepared) return prepared.failed;
  const { input } = prepared;
  const { handle } = input;
  try {
    return await writeProducts(
      deps,
      tenantId,
      async (trx, touched): Promise<RowOutcome> => {
        const id = await findProductId(trx, tenantId, handle);
        if (id === undefined) {
          const product = await createProductIn(deps, trx, tenantId, input, meta);
          touched.add(product.id);
          return { status: 'created', id: product.id, handle };
        }
        const current = await lockedProduct(trx, tenantId, id);
        const categoryIds = await resolveCategories(trx, tenantId, input);
        if (sameAs(current, input, categoryIds)) return { status: 'unchanged', id, handle };
        touched.add(id);
        await replaceProductIn(deps, trx, tenantId, current, input, meta, categoryIds);
        return { status: 'updated', id, handle };
      },
      variantSkus(input),
    );
  } catch (error) {
    if (!(error instanceof AppError)) log?.(error);
    return failed(error);
  }
}
