import { type RawBuilder, sql, type Transaction } from 'kysely';
import { tsqueryText } from './query-text.ts';
import type { SearchCursor, Sort } from './search-cursor.ts';
import type { ProductSummary } from './search-schemas.ts';

// biome-ignore lint/suspicious/noExplicitAny: search reads its own tables with raw SQL
export type Trx = Transaction<any>;

export type ProductStatus = 'draft' | 'active' | 'archived';

/** What narrows a list; every field a shopper sets, checked by the route schema. */
export type SearchFilters = {
  statuses: ProductStatus[];
  /** Category ids (their subtrees match); an empty list matches nothing. Undefined: no filter. */
  categoryIds?: string[] | undefined;
  /** All of these tags (lower-cased). */
  tags: string[];
  /** Groups of 'key=value' pairs: a product has one pair of every group. */
  attributes: string[][];
  currency?: string | undefined;
  minPrice?: number | undefined;
  maxPrice?: number | undefined;
  inStock?: boolean | undefined;
  /**
   * Only products with a price in `currency` (a price sort leaves the others out, so its facets
   * must not count them).
   */
  priced?: boolean | undefined;
};

/**
 * A text search ranks at most this many matching products: those whose title, tags or
 * categories match first, then those that only mention the words. Ranking is the costly part
 * of a query; capped, a word in every product costs what a rare one does. See README "Limits".
 */
export const RANKED_CAP = 500;
/** A text search sorted by price or newest sorts at most this many matches. */
export const SORTED_CAP = 2000;

export type Hit = { product_id: string; summary: ProductSummary; in_stock: boolean; key: unknown };

const price = (currency: string) => sql`(d.prices ->> ${currency})::bigint`;

/**
 * The categories a text search finds through its words' index (each search document carries its
 * categories as lexemes, migration 0041), so GIN intersects words and categories at once;
 * undefined without text or without the filter, and for an empty list (which matches nothing,
 * through category_ids).
 */
export const matchedCategories = (f: SearchFilters, text: boolean): string[] | undefined =>
  text && f.categoryIds && f.categoryIds.length > 0 ? f.categoryIds : undefined;

/**
 * The FROM item of a text search: `t.query`, the words (what ranks), and `t.match`, the words
 * within matchedCategories' categories (what finds).
 */
export function textQuery(tsquery: string, categories: string[] | undefined): RawBuilder<unknown> {
  const match = categories ? sql`q.query && catalog.category_query(${categories}::uuid[])` : sql`q.query`;
  return sql`(select q.query, ${match} as match from to_tsquery('english', ${tsquery}) as q (query)) t`;
}

/**
 * The where clauses of the filters on search_documents d (and sp.price when priceColumn); without
 * the category filter when the text's match carries it (categoriesInText).
 */
export function filterClauses(
  tenantId: string,
  f: SearchFilters,
  priceColumn?: RawBuilder<unknown>,
  categoriesInText = false,
): RawBuilder<unknown>[] {
  const where = [sql`d.tenant_id = ${tenantId}`, sql`d.status = any(${f.statuses}::text[])`];
  if (f.categoryIds && !categoriesInText) where.push(sql`d.category_ids && ${f.categoryIds}::uuid[]`);
  if (f.tags.length > 0) where.push(sql`d.tags @> ${f.tags}::text[]`);
  for (const group of f.attributes) where.push(sql`d.attributes && ${group}::text[]`);
  if (f.inStock !== undefined) where.push(sql`d.in_stock = ${f.inStock}`);
  if (f.currency !== undefined && (f.minPrice !== undefined || f.maxPrice !== undefined)) {
    const p = priceColumn ?? price(f.currency);
    if (f.minPrice !== undefined) where.push(sql`${p} >= ${f.minPrice}`);
    if (f.maxPrice !== undefined) where.push(sql`${p} <= ${f.maxPrice}`);
  } else if (f.currency !== undefined && f.priced)
    where.push(sql`${priceColumn ?? price(f.currency)} is not null`);
  return where;
}

export const and = (clauses: RawBuilder<unknown>[]) => sql.join(clauses, sql` and `);

function keyset(
  sort: Sort,
  after: SearchCursor | undefined,
  key: RawBuilder<unknown>,
  id: RawBuilder<unknown>,
) {
  if (!after) return sql`true`;
  switch (sort) {
    case 'relevance':
      return sql`(${key} < ${after.key}::real or (${key} = ${after.key}::real and ${id} > ${after.id}::uuid))`;
    case 'newest':
      return sql`(${key}, ${id}) < (${after.key}::timestamptz, ${after.id}::uuid)`;
    case 'price_asc':
      return sql`(${key}, ${id}) > (${after.key}::bigint, ${after.id}::uuid)`;
    case 'price_desc':
      return sql`(${key}, ${id}) < (${after.key}::bigint, ${after.id}::uuid)`;
  }
}

function orderBy(sort: Sort, key: RawBuilder<unknown>, id: RawBuilder<unknown>) {
  switch (sort) {
    case 'relevance':
      return sql`${key} desc, ${id}`;
    case 'newest':
    case 'price_desc':
      return sql`${key} desc, ${id} desc`;
    case 'price_asc':
      return sql`${key}, ${id}`;
  }
}

export type ListInput = {
  filters: SearchFilters;
  /** Word groups of a text search (each group: a word and its corrections); undefined lists. */
  groups?: string[][] | undefined;
  /** relevance only with groups; price sorts need filters.currency. */
  sort: Sort;
  /** Rows to fetch (the page size plus one, to know there is a next page). */
  take: number;
  after?: SearchCursor | undefined;
};

/** One page of products in the sort's order, after the cursor. */
export async function listHits(trx: Trx, tenantId: string, input: ListInput): Promise<Hit[]> {
  const { filters, groups, sort, take, after } = input;
  if (groups) return textHits(trx, tenantId, input, tsqueryText(groups));
  const where = filterClauses(tenantId, filters);
  if (sort === 'newest' || sort === 'relevance') {
    const key = sql`d.created_at`;
    const id = sql`d.product_id`;
    return (
      await sql<Hit>`select d.product_id, d.summary, d.in_stock, d.created_at as key
        from catalog.tenant_search_documents d
        where ${and(where)} and ${keyset('newest', after, key, id)}
        order by ${orderBy('newest', key, id)} limit ${take}`.execute(trx)
    ).rows;
  }
  // Price order straight from search_prices' index; other filters apply on the way.
  const key = sql`sp.price`;
  const id = sql`sp.product_id`;
  const priced = filterClauses(tenantId, filters, key);
  return (
    await sql<Hit>`select d.product_id, d.summary, d.in_stock, sp.price as key
      from catalog.tenant_search_prices sp
      join catalog.tenant_search_documents d on d.tenant_id = sp.tenant_id and d.product_id = sp.product_id
      where sp.tenant_id = ${tenantId} and sp.currency = ${filters.currency}
        and ${and(priced)} and ${keyset(sort, after, key, id)}
      order by ${orderBy(sort, key, id)} limit ${take}`.execute(trx)
  ).rows;
}

async function textHits(trx: Trx, tenantId: string, input: ListInput, tsquery: string): Promise<Hit[]> {
  const { filters, sort, take, after } = input;
  const keyExpr =
    sort === 'relevance'
      ? sql`ts_rank(d.document, t.query, 1)`
      : sort === 'newest'
        ? sql`d.created_at`
        : price(filters.currency!);
  const cap = sort === 'relevance' ? RANKED_CAP : SORTED_CAP;
  const categories = matchedCategories(filters, true);
  const where = and(filterClauses(tenantId, filters, undefined, categories !== undefined));
  const text = textQuery(tsquery, categories);
  const key = sql`h.key`;
  const id = sql`h.product_id`;
  // Candidates named by the query (heading: title, tags, categories) first; the products that
  // only mention it fill what is left of the cap, and are not read at all when nothing is.
  return (
    await sql<Hit>`with named as (
        select d.product_id, d.summary, d.in_stock, ${keyExpr} as key
        from catalog.tenant_search_documents d, ${text}
        where ${where} and d.heading @@ t.match
        limit ${cap}
      ), mentioned as (
        select d.product_id, d.summary, d.in_stock, ${keyExpr} as key
        from catalog.tenant_search_documents d, ${text}
        where ${where} and d.document @@ t.match and not (d.heading @@ t.match)
        limit greatest(0, ${cap} - (select count(*) from named))
      ), hits as (select * from named union all select * from mentioned)
      select h.product_id, h.summary, h.in_stock, h.key from hits h
      where h.key is not null and ${keyset(sort, after, key, id)}
      order by ${orderBy(sort, key, id)} limit ${take}`.execute(trx)
  ).rows;
}
