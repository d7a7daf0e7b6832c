import { sql } from 'kysely';
import { tsqueryText } from './query-text.ts';
import type { ProductStatus, Trx } from './search-query.ts';
import type { ProductSummary } from './search-schemas.ts';

const MAX_TERMS = 6;
const MAX_PRODUCTS = 6;
/** Title matches ranked for the product suggestions (the first ones the index finds). */
const PRODUCT_CANDIDATES = 200;
/** Dictionary words read per prefix before the shortest are chosen. */
const TERM_CANDIDATES = 60;

export type Suggestions = {
  /** Completions of the query: its words with the last one completed from the dictionary. */
  terms: string[];
  products: Array<Pick<ProductSummary, 'id' | 'handle' | 'title' | 'image' | 'prices'>>;
};

const likePrefix = (word: string) => `${word.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Autocomplete for a search box: words of the tenant's dictionary that start with the last word
 * typed (a btree range scan), and products whose title has every word, the last as a prefix
 * (the full-text index, title weight only). words are queryWords(q), at least one.
 */
export async function suggest(
  trx: Trx,
  tenantId: string,
  words: string[],
  statuses: ProductStatus[],
): Promise<Suggestions> {
  const last = words.at(-1)!;
  const head = words.slice(0, -1).join(' ');
  const terms = (
    await sql<{ term: string }>`select distinct term from (
        select term from catalog.tenant_search_terms
        where tenant_id = ${tenantId} and term like ${likePrefix(last)}
        order by term limit ${TERM_CANDIDATES}) t`.execute(trx)
  ).rows
    .map((r) => r.term)
    .sort((a, b) => a.length - b.length || (a < b ? -1 : 1))
    .slice(0, MAX_TERMS)
    .map((term) => (head ? `${head} ${term}` : term));
  const tsquery = tsqueryText(
    words.map((w) => [w]),
    { prefixLast: true, weight: 'A' },
  );
  const products = (
    await sql<{ id: string; summary: ProductSummary }>`select c.product_id as id, c.summary from (
        select d.product_id, d.summary, d.title, ts_rank(d.document, query, 1) as rank
        from catalog.tenant_search_documents d, to_tsquery('english', ${tsquery}) query
        where d.tenant_id = ${tenantId} and d.status = any(${statuses}::text[]) and d.document @@ query
        limit ${PRODUCT_CANDIDATES}
      ) c
      order by c.rank desc, c.title, c.product_id limit ${MAX_PRODUCTS}`.execute(trx)
  ).rows;
  return {
    terms,
    products: products.map(({ summary: { id, handle, title, image, prices } }) => ({
      id,
      handle,
      title,
      image,
      prices,
    })),
  };
}
