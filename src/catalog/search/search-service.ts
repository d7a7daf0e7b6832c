import { type Kysely, sql } from 'kysely';
import { type TransactionSettings, withTenant } from '../../platform/db/index.ts';
import { AppError, type FieldError, invalidCursor } from '../../platform/http/index.ts';
import { isUuid } from '../../platform/uuidv7.ts';
import { type Facets, facetCounts } from './facets.ts';
import { queryWords } from './query-text.ts';
import { readCursor, type SearchCursor, type Sort, writeCursor } from './search-cursor.ts';
import { type Hit, listHits, type ProductStatus, type SearchFilters, type Trx } from './search-query.ts';
import type { ListItem } from './search-schemas.ts';
import { correctWords } from './typo-correction.ts';

/** Fewer full-text matches than this on a first page: typo corrections are searched too. */
export const FUZZY_BELOW = 5;

export type ListParams = {
  q?: string | undefined;
  category?: string | string[] | undefined;
  tag?: string | string[] | undefined;
  attribute?: string | string[] | undefined;
  currency?: string | undefined;
  minPrice?: number | undefined;
  maxPrice?: number | undefined;
  inStock?: boolean | undefined;
  status?: ProductStatus | undefined;
  sort?: Sort | undefined;
  facets?: boolean | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
};

export type ProductPage = {
  items: ListItem[];
  nextCursor: string | null;
  corrections?: Record<string, string[]>;
  facets?: Facets;
};

const list = (value: string | string[] | undefined): string[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

function invalid(errors: FieldError[]): never {
  throw new AppError('VALIDATION_FAILED', errors.map((e) => `${e.pointer} ${e.message}`).join('; '), {
    errors,
  });
}

/**
 * A 'name:value' filter's name and value: the name ends at the first ':' not escaped, as a name
 * holding ':' or '\' is written ('\:', '\\'; the schema allows no other escape).
 */
function attributeFilter(filter: string): { name: string; value: string } {
  let name = '';
  let at = 0;
  for (; at < filter.length && filter[at] !== ':'; at++)
    name += filter[at] === '\\' ? filter[++at] : filter[at];
  return { name, value: filter.slice(at + 1) };
}

/** 'name:value' filters as groups of 'name=value' pairs, one group per name. */
function attributeGroups(values: string[]): string[][] {
  const groups = new Map<string, string[]>();
  for (const filter of values) {
    const { name: written, value } = attributeFilter(filter);
    const name = written.trim().toLowerCase();
    const pair = `${name}=${value.trim()}`;
    groups.set(name, [...(groups.get(name) ?? []), pair]);
  }
  return [...groups.values()];
}

/** Category ids for ids and handles; unknown ones match nothing. */
async function resolveCategories(trx: Trx, tenantId: string, refs: string[]): Promise<string[] | undefined> {
  if (refs.length === 0) return undefined;
  const ids = refs.filter((r) => isUuid(r)).map((r) => r.toLowerCase());
  const handles = refs.filter((r) => !isUuid(r));
  const rows = (
    await sql<{ id: string }>`select id from catalog.categories where tenant_id = ${tenantId}
      and (id = any(${ids}::uuid[]) or handle = any(${handles}::text[]))`.execute(trx)
  ).rows;
  return rows.map((r) => r.id);
}

/**
 * The planner prices a full-text match (@@) like a comparison of two integers, so with a LIMIT
 * over a common word it prefers reading the table in order and matching every row (measured:
 * 15,000 rows matched to find 2,000) over the GIN index. Off for the transaction only: the
 * settings of a withTenant transaction that searches text (made with its BEGIN).
 */
export const PREFER_INDEXES: TransactionSettings = { enable_seqscan: 'off' };

export const item = (hit: Hit): ListItem => ({ ...hit.summary, inStock: hit.in_stock });

/** The cursor value of a row's sort key, as the next page compares it. */
function keyOf(sort: Sort, hit: Hit): number | string {
  if (sort === 'newest') return (hit.key instanceof Date ? hit.key : new Date(String(hit.key))).toISOString();
  return Number(hit.key);
}

/**
 * GET /products: a list (newest first, or by price) or a text search (by relevance unless
 * sorted), filtered, one keyset page at a time, with facet counts on request.
 */
export async function searchProducts(
  db: Kysely<unknown>,
  tenantId: string,
  params: ListParams,
  seesAll: boolean,
): Promise<ProductPage> {
  if (params.status && params.status !== 'active' && !seesAll)
    throw new AppError('FORBIDDEN', 'only staff may list draft or archived products');
  const words = params.q === undefined ? [] : queryWords(params.q);
  const textSearch = words.length > 0;
  const requested = params.sort ?? (textSearch ? 'relevance' : 'newest');
  const sort: Sort = requested === 'relevance' && !textSearch ? 'newest' : requested;
  const errors: FieldError[] = [];
  const needsCurrency =
    sort === 'price_asc' ||
    sort === 'price_desc' ||
    params.minPrice !== undefined ||
    params.maxPrice !== undefined;
  if (needsCurrency && params.currency === undefined)
    errors.push({
      in: 'query',
      pointer: '/currency',
      message: 'is required by price sorts and price ranges',
    });
  if (params.minPrice !== undefined && params.maxPrice !== undefined && params.minPrice > params.maxPrice)
    errors.push({ in: 'query', pointer: '/maxPrice', message: 'must be at least minPrice' });
  if (errors.length > 0) invalid(errors);
  const after: SearchCursor | undefined =
    params.cursor === undefined ? undefined : readCursor(params.cursor, sort);
  const limit = params.limit ?? 24;
  const statuses: ProductStatus[] = params.status
    ? [params.status]
    : seesAll
      ? ['draft', 'active', 'archived']
      : ['active'];

  const search = async (trx: Trx) => {
    const filters: SearchFilters = {
      statuses,
      categoryIds: await resolveCategories(trx, tenantId, list(params.category)),
      tags: [...new Set(list(params.tag).map((t) => t.toLowerCase()))],
      attributes: attributeGroups(list(params.attribute)),
      currency: params.currency,
      minPrice: params.minPrice,
      maxPrice: params.maxPrice,
      inStock: params.inStock,
    };
    if (after?.groups && after.groups.map((g) => g[0]).join(' ') !== words.join(' '))
      throw invalidCursor('it pages another query');
    let groups = textSearch ? (after?.groups ?? words.map((w) => [w])) : undefined;
    let corrections: Record<string, string[]> | undefined;
    if (after?.groups) {
      const extra = after.groups.filter((g) => g.length > 1);
      if (extra.length > 0) corrections = Object.fromEntries(extra.map((g) => [g[0]!, g.slice(1)]));
    }
    const take = limit + 1;
    let hits = await listHits(trx, tenantId, { filters, groups, sort, take, after });
    // A first page with fewer than FUZZY_BELOW matches (all there are, as it holds fewer than it
    // asked for): search again with typo corrections of the words the dictionary lacks.
    if (groups && !after && hits.length < Math.min(FUZZY_BELOW, take)) {
      const found = await correctWords(trx, tenantId, words);
      if (found.size > 0) {
        corrections = Object.fromEntries(found);
        groups = words.map((w) => [w, ...(found.get(w) ?? [])]);
        hits = await listHits(trx, tenantId, { filters, groups, sort, take, after });
      }
    }
    const page = hits.slice(0, limit);
    const last = page.at(-1);
    const nextCursor =
      hits.length > limit && last
        ? writeCursor({ sort, key: keyOf(sort, last), id: last.product_id, groups })
        : null;
    const result: ProductPage = { items: page.map(item), nextCursor };
    if (corrections) result.corrections = corrections;
    // A price sort leaves out the products without a price in the currency: so do its facets.
    const priced = sort === 'price_asc' || sort === 'price_desc';
    if (params.facets) result.facets = await facetCounts(trx, tenantId, { ...filters, priced }, groups);
    return result;
  };
  return withTenant(db, tenantId, search, textSearch ? PREFER_INDEXES : undefined);
}
