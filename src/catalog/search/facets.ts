import { sql } from 'kysely';
import { tsqueryText } from './query-text.ts';
import {
  and,
  filterClauses,
  matchedCategories,
  type SearchFilters,
  type Trx,
  textQuery,
} from './search-query.ts';

/** Facets count at most this many matching products (exact below it; README "Limits"). */
export const FACET_CAP = 1000;
const MAX_ATTRIBUTE_NAMES = 30;
const MAX_VALUES_PER_ATTRIBUTE = 30;

/** Price band edges in major units; each currency's are scaled by its minor-unit digits. */
const BAND_EDGES = [0, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000];
const ZERO_DECIMALS = new Set(
  'BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF'.split(' '),
);
const THREE_DECIMALS = new Set('BHD IQD JOD KWD LYD OMR TND'.split(' '));

/** The band edges of a currency in minor units. */
export function bandEdges(currency: string): number[] {
  const scale = ZERO_DECIMALS.has(currency) ? 1 : THREE_DECIMALS.has(currency) ? 1000 : 100;
  return BAND_EDGES.map((edge) => edge * scale);
}

/** Code point order, as PostgreSQL's collation "C" compares UTF-8 (JavaScript's < compares UTF-16 units). */
const byCodePoint = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

export type Facets = {
  /** Products counted; equal to the matches when exact. */
  matched: number;
  /** False when more than FACET_CAP products match: the counts are then of the first FACET_CAP. */
  exact: boolean;
  categories: Array<{ id: string; handle: string; name: string; parentId: string | null; count: number }>;
  prices: Array<{ currency: string; min: number; max: number | null; count: number }>;
  attributes: Array<{ name: string; values: Array<{ value: string; count: number }> }>;
  inStock: { inStock: number; outOfStock: number };
};

/**
 * Counts over the products the request matches (its text and every filter): per category
 * (a product counts for its categories and their ancestors), per price band of the currency,
 * per attribute value, in stock or not. One scan of the matches feeds every count, and each is
 * grouped in the database: one row per value shown comes back (per name the 30 most frequent of
 * the first 30 names), never one per distinct value matched.
 */
export async function facetCounts(
  trx: Trx,
  tenantId: string,
  filters: SearchFilters,
  groups: string[][] | undefined,
): Promise<Facets> {
  const currency = filters.currency;
  const edges = currency ? bandEdges(currency) : [];
  const categories = matchedCategories(filters, groups !== undefined);
  const text = groups ? sql`, ${textQuery(tsqueryText(groups), categories)}` : sql``;
  const match = groups ? sql`and d.document @@ t.match` : sql``;
  const priceExpr = currency ? sql`(d.prices ->> ${currency})::bigint` : sql`null::bigint`;
  const rows = (
    await sql<{ facet: string; value: string | null; n: number }>`with hits as (
        select d.category_ids, d.attributes, d.in_stock, ${priceExpr} as price
        from catalog.tenant_search_documents d ${text}
        where ${and(filterClauses(tenantId, filters, undefined, categories !== undefined))} ${match}
        limit ${FACET_CAP + 1}
      ),
      -- One row past the cap only tells whether more match; the counts are of FACET_CAP rows.
      counted as materialized (select * from hits limit ${FACET_CAP}),
      -- Per attribute name, its values and their counts; only the names and values shown leave
      -- the database (the first names in byte order, each its most frequent values).
      pairs as (
        select split_part(a, '=', 1) as name, substr(a, strpos(a, '=') + 1) as value, count(*)::int as n
        from counted, unnest(counted.attributes) a group by a
      )
      select 'total' as facet, null as value, count(*)::int as n from hits
      union all
      select 'category', c::text, count(*)::int from counted, unnest(counted.category_ids) c group by c
      union all
      select 'attribute', a.name || '=' || a.value, a.n from (
        select p.*, row_number() over (partition by p.name order by p.n desc, p.value collate "C") as r
        from pairs p where p.name in (select name from pairs group by name order by name collate "C" limit ${MAX_ATTRIBUTE_NAMES})
      ) a where a.r <= ${MAX_VALUES_PER_ATTRIBUTE}
      union all
      select 'stock', in_stock::text, count(*)::int from counted group by in_stock
      union all
      select 'price', width_bucket(price, ${edges}::bigint[])::text, count(*)::int
        from counted where price is not null group by 2`.execute(trx)
  ).rows;
  const facets: Facets = {
    matched: 0,
    exact: true,
    categories: [],
    prices: [],
    attributes: [],
    inStock: { inStock: 0, outOfStock: 0 },
  };
  const categoryCounts = new Map<string, number>();
  const attributeCounts = new Map<string, Array<{ value: string; count: number }>>();
  for (const { facet, value, n } of rows) {
    if (facet === 'total') {
      facets.matched = Math.min(n, FACET_CAP);
      facets.exact = n <= FACET_CAP;
    } else if (facet === 'category') categoryCounts.set(value!, n);
    else if (facet === 'stock') facets.inStock[value === 'true' ? 'inStock' : 'outOfStock'] = n;
    else if (facet === 'price' && currency) {
      const band = Number(value);
      facets.prices.push({ currency, min: edges[band - 1]!, max: edges[band] ?? null, count: n });
    } else if (facet === 'attribute') {
      const cut = value!.indexOf('=');
      const name = value!.slice(0, cut);
      const values = attributeCounts.get(name) ?? [];
      values.push({ value: value!.slice(cut + 1), count: n });
      attributeCounts.set(name, values);
    }
  }
  facets.prices.sort((a, b) => a.min - b.min);
  // The database chose them (collation "C": code point order); they are put in that order here.
  facets.attributes = [...attributeCounts.entries()]
    .sort(([a], [b]) => byCodePoint(a, b))
    .map(([name, values]) => ({
      name,
      values: values.sort((a, b) => b.count - a.count || byCodePoint(a.value, b.value)),
    }));
  if (categoryCounts.size > 0) {
    const categories = (
      await sql<{ id: string; handle: string; name: string; parent_id: string | null }>`select id, handle,
          name, parent_id from catalog.categories
        where tenant_id = ${tenantId} and id = any(${[...categoryCounts.keys()]}::uuid[])`.execute(trx)
    ).rows;
    facets.categories = categories
      .map((c) => ({
        id: c.id,
        handle: c.handle,
        name: c.name,
        parentId: c.parent_id,
        count: categoryCounts.get(c.id)!,
      }))
      .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
  }
  return facets;
}
