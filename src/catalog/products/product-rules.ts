import type { Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { AppError, type FieldError, validationFailed } from '../../platform/http/index.ts';
import { fieldErrors } from '../../platform/http/problem-handler.ts';
import { cutText } from '../../platform/text.ts';
import { isUuid } from '../../platform/uuidv7.ts';
import type { Image, ProductStatus, Seo } from '../tables.ts';
import { LIMITS, type NewVariantBody, ProductBody, type VariantBody } from './product-schemas.ts';

export type ProductBodyInput = Static<typeof ProductBody>;
export type VariantBodyInput = Static<typeof VariantBody> | Static<typeof NewVariantBody>;

/** A variant as written: validated, defaults filled. */
export type VariantInput = {
  id?: string | undefined;
  sku: string;
  title: string;
  options: Record<string, string>;
  prices: Record<string, number>;
  compareAtPrices: Record<string, number>;
  weightGrams: number | null;
  barcode: string | null;
};

/** A product as written: validated, defaults filled (handle undefined: make one from the title). */
export type ProductInput = {
  title: string;
  handle: string | undefined;
  description: string;
  status: ProductStatus;
  categoryIds: string[];
  categoryHandles: string[];
  tags: string[];
  attributes: Record<string, unknown>;
  images: Image[];
  seo: Seo;
  /** undefined: keep the product's variants (PUT without variants). */
  variants: VariantInput[] | undefined;
};

const CURRENCIES = new Set(Intl.supportedValuesOf('currency'));

/**
 * Handles no product may have: GET /products/suggest is autocomplete, so a product with this
 * handle could never be read by it.
 */
export const RESERVED_PRODUCT_HANDLES: ReadonlySet<string> = new Set(['suggest']);

/**
 * A handle made from a title: accents dropped, lowercase letters and digits separated by single
 * dashes, at most 200 characters (room for a "-2" suffix). Empty when the title has no Latin
 * letter or digit; the caller then picks a fallback.
 */
export function slugify(title: string): string {
  return title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 200)
    .replace(/-+$/, '');
}

const body = (pointer: string, message: string): FieldError => ({ in: 'body', pointer, message });

function checkHttpUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return (parsed.protocol === 'https:' || parsed.protocol === 'http:') && parsed.hostname !== '';
  } catch {
    return false;
  }
}

function depthOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  let deepest = 0;
  for (const child of Object.values(value)) deepest = Math.max(deepest, depthOf(child));
  return deepest + 1;
}

function checkPrices(prices: Record<string, number>, at: string, errors: FieldError[]) {
  for (const code of Object.keys(prices))
    if (!CURRENCIES.has(code)) errors.push(body(`${at}/${code}`, `${code} is not an ISO 4217 currency code`));
}

/** A variant's title when none is given: its option values, else "Default". */
export const defaultVariantTitle = (options: Record<string, string>): string =>
  // 255 characters (code points, as the column counts them): a cut never splits a surrogate pair.
  cutText(Object.values(options).join(' / '), 255) || 'Default';

/** Checks one variant beyond its schema and fills its defaults; errors are pushed under `at`. */
export function normaliseVariant(v: VariantBodyInput, at: string, errors: FieldError[]): VariantInput {
  checkPrices(v.prices, `${at}/prices`, errors);
  checkPrices(v.compareAtPrices ?? {}, `${at}/compareAtPrices`, errors);
  const options = Object.fromEntries(
    Object.entries(v.options ?? {}).map(([name, value]) => [name.trim(), value.trim()]),
  );
  for (const [name, value] of Object.entries(options)) {
    if (name === '') errors.push(body(`${at}/options`, 'an option name is blank'));
    if (value === '') errors.push(body(`${at}/options/${name}`, 'is blank'));
  }
  const title = v.title?.trim() || defaultVariantTitle(options);
  return {
    ...('id' in v && v.id !== undefined ? { id: v.id.toLowerCase() } : {}),
    sku: v.sku,
    title,
    options,
    prices: v.prices,
    compareAtPrices: v.compareAtPrices ?? {},
    weightGrams: v.weightGrams ?? null,
    barcode: v.barcode ?? null,
  };
}

/** The option values of a variant as one comparable key. */
export const optionKey = (options: Record<string, string>): string =>
  JSON.stringify(Object.entries(options).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/**
 * The product's own rules (the schema has passed): currencies, URLs, bounded attributes, tags
 * trimmed and de-duplicated, one SKU and one option combination per variant. Returns the
 * normalised input and the failing fields (empty when it may be written).
 */
export function normaliseProduct(raw: ProductBodyInput): { input: ProductInput; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const title = raw.title.trim();
  if (title === '') errors.push(body('/title', 'is blank'));
  if (raw.handle !== undefined && isUuid(raw.handle))
    errors.push(body('/handle', 'must not look like an id'));
  if (raw.handle !== undefined && RESERVED_PRODUCT_HANDLES.has(raw.handle))
    errors.push(body('/handle', `is reserved: /products/${raw.handle} is another route`));
  const attributes = raw.attributes ?? {};
  const attributesBytes = Buffer.byteLength(JSON.stringify(attributes));
  if (attributesBytes > LIMITS.attributesBytes)
    errors.push(
      body('/attributes', `is ${attributesBytes} bytes of JSON, more than ${LIMITS.attributesBytes}`),
    );
  if (depthOf(attributes) > LIMITS.attributesDepth)
    errors.push(body('/attributes', `is nested more than ${LIMITS.attributesDepth} levels deep`));
  const images = (raw.images ?? []).map((image, i) => {
    if (!checkHttpUrl(image.url)) errors.push(body(`/images/${i}/url`, 'must be an http or https URL'));
    return { url: image.url, alt: image.alt ?? '' };
  });
  const tags: string[] = [];
  const seenTags = new Set<string>();
  for (const tag of raw.tags ?? []) {
    const trimmed = tag.trim();
    if (trimmed === '' || seenTags.has(trimmed.toLowerCase())) continue;
    seenTags.add(trimmed.toLowerCase());
    tags.push(trimmed);
  }
  const variants = raw.variants?.map((v, i) => normaliseVariant(v, `/variants/${i}`, errors));
  const combos = new Map<string, number>();
  const ids = new Map<string, number>();
  variants?.forEach((v, i) => {
    const key = optionKey(v.options);
    const sameOptions = combos.get(key);
    if (sameOptions !== undefined && variants.length > 1)
      errors.push(body(`/variants/${i}/options`, `are the same as variant ${sameOptions}'s`));
    combos.set(key, i);
    if (v.id !== undefined) {
      if (ids.has(v.id)) errors.push(body(`/variants/${i}/id`, `is also the id of variant ${ids.get(v.id)}`));
      ids.set(v.id, i);
    }
  });
  const seo: Seo = {};
  if (raw.seo?.title !== undefined) seo.title = raw.seo.title;
  if (raw.seo?.description !== undefined) seo.description = raw.seo.description;
  return {
    input: {
      title,
      handle: raw.handle,
      description: raw.description ?? '',
      status: raw.status ?? 'draft',
      categoryIds: (raw.categoryIds ?? []).map((id) => id.toLowerCase()),
      categoryHandles: raw.categoryHandles ?? [],
      tags,
      attributes,
      images,
      seo,
      variants,
    },
    errors,
  };
}

/** 409 SKU_TAKEN when two variants of one request share a SKU (the unique index would say so too, less clearly). */
export function refuseDuplicateSkus(variants: VariantInput[] | undefined): void {
  const seen = new Map<string, number>();
  variants?.forEach((v, i) => {
    const first = seen.get(v.sku);
    if (first !== undefined)
      throw new AppError('SKU_TAKEN', `SKU "${v.sku}" is given to variants ${first} and ${i}`, {
        sku: v.sku,
        errors: [body(`/variants/${i}/sku`, `is also the SKU of variant ${first}`)],
      });
    seen.set(v.sku, i);
  });
}

/** 400 VALIDATION_FAILED listing errors, one per field, when there are any. */
export function throwIfErrors(errors: FieldError[]): void {
  if (errors.length === 0) return;
  const byPointer = new Map<string, FieldError>();
  for (const error of errors) if (!byPointer.has(error.pointer)) byPointer.set(error.pointer, error);
  const unique = [...byPointer.values()];
  throw validationFailed(unique);
}

const productBody = Compile(ProductBody);

/**
 * One batch or import row checked as POST /products checks its body: the normalised input, or
 * the failing fields. A row with no variants is refused (it creates or replaces a product).
 */
export function checkProductRow(row: unknown): { input?: ProductInput; errors: FieldError[] } {
  if (!productBody.Check(row)) {
    const issues = [...productBody.Errors(row)] as Parameters<typeof fieldErrors>[1];
    return { errors: fieldErrors('body', issues) };
  }
  const { input, errors } = normaliseProduct(row);
  if (input.variants === undefined) errors.push(body('/variants', 'a product needs 1 to 100 variants'));
  return errors.length > 0 ? { errors } : { input, errors };
}
