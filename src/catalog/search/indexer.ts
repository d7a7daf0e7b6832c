import { sql, type Transaction } from 'kysely';
import { cutText } from '../../platform/text.ts';
import { pruneDictionary } from './dictionary.ts';
import { wordsOf } from './query-text.ts';
import { lockStockFlags } from './stock-levels.ts';

// biome-ignore lint/suspicious/noExplicitAny: the caller's catalog transaction (withTenant)
type Trx = Transaction<any>;

type ProductRow = {
  id: string;
  handle: string;
  title: string;
  description: string;
  status: 'draft' | 'active' | 'archived';
  tags: string[];
  attributes: Record<string, unknown>;
  images: Array<{ url: string; alt: string }>;
  published_at: Date | string | null;
  created_at: Date | string;
  updated_at: Date | string;
};
type VariantRow = {
  product_id: string;
  sku: string;
  title: string;
  barcode: string | null;
  options: Record<string, unknown>;
  prices: Record<string, unknown>;
  compare_at_prices: Record<string, unknown>;
};
type CategoryRow = { product_id: string; id: string; name: string; handle: string; direct: boolean };

const iso = (value: Date | string | null): string | null =>
  value === null ? null : (value instanceof Date ? value : new Date(value)).toISOString();

/** Text as full-text search reads it: NFKC, the form query words take. */
const searchable = (text: string): string => text.normalize('NFKC');

/** At most this many attribute pairs per product are indexed (filters and facets). */
const MAX_PAIRS = 200;

const scalar = (value: unknown): string | undefined =>
  typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
    ? cutText(String(value).trim(), 100)
    : undefined;

/**
 * 'key=value' pairs of a product's attributes (scalars, and arrays of scalars; nested objects are
 * not facets) and of its variants' option values; keys lower-cased, values as written.
 */
export function attributePairs(attributes: Record<string, unknown>, options: Array<Record<string, unknown>>) {
  const pairs = new Set<string>();
  const add = (key: string, value: unknown) => {
    const text = scalar(value);
    const name = cutText(key.trim().toLowerCase(), 64);
    if (text && name && !name.includes('=') && pairs.size < MAX_PAIRS) pairs.add(`${name}=${text}`);
  };
  for (const [key, value] of Object.entries(attributes)) {
    if (Array.isArray(value)) for (const item of value) add(key, item);
    else add(key, value);
  }
  for (const option of options) for (const [key, value] of Object.entries(option)) add(key, value);
  return [...pairs];
}

function minMaxPrices(variants: VariantRow[]) {
  const ranges: Record<string, { min: number; max: number }> = {};
  for (const variant of variants) {
    for (const [currency, raw] of Object.entries(variant.prices)) {
      const price = Number(raw);
      if (!/^[A-Z]{3}$/.test(currency) || !Number.isSafeInteger(price) || price < 0) continue;
      const range = ranges[currency];
      if (!range) ranges[currency] = { min: price, max: price };
      else {
        range.min = Math.min(range.min, price);
        range.max = Math.max(range.max, price);
      }
    }
  }
  return ranges;
}

function groupBy<T extends { product_id: string }>(rows: T[]): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const row of rows) {
    const list = map.get(row.product_id);
    if (list) list.push(row);
    else map.set(row.product_id, [row]);
  }
  return map;
}

/** The catalog rows of the products, read in the caller's transaction. */
async function readProducts(trx: Trx, tenantId: string, ids: string[]) {
  const products = (
    await sql<ProductRow>`select id, handle, title, description, status, tags, attributes, images,
        published_at, created_at, updated_at
      from catalog.products where tenant_id = ${tenantId} and id = any(${ids}::uuid[])`.execute(trx)
  ).rows;
  const found = products.map((p) => p.id);
  if (found.length === 0) return { products, variants: [], categories: [], stocked: new Set<string>() };
  const variants = (
    await sql<VariantRow>`select product_id, sku, title, barcode, options, prices, compare_at_prices
      from catalog.variants where tenant_id = ${tenantId} and product_id = any(${found}::uuid[])
      order by product_id, position, id`.execute(trx)
  ).rows;
  // Each product's categories and all their ancestors (depth-bounded against a cycle).
  const categories = (
    await sql<CategoryRow>`with recursive lineage (product_id, category_id, direct, depth) as (
        select product_id, category_id, true, 0 from catalog.product_categories
          where tenant_id = ${tenantId} and product_id = any(${found}::uuid[])
        union all
        select l.product_id, c.parent_id, false, l.depth + 1
          from lineage l join catalog.categories c on c.id = l.category_id
          where c.parent_id is not null and l.depth < 32
      )
      select l.product_id, c.id, c.name, c.handle, bool_or(l.direct) as direct
        from lineage l join catalog.categories c on c.id = l.category_id
        group by l.product_id, c.id, c.name, c.handle`.execute(trx)
  ).rows;
  const stocked = new Set(
    (
      await sql<{ product_id: string }>`select distinct v.product_id from catalog.variants v
        join catalog.variant_stock s on s.tenant_id = v.tenant_id and s.variant_id = v.id
        where v.tenant_id = ${tenantId} and v.product_id = any(${found}::uuid[])
          and (s.available > 0 or s.allow_backorder)`.execute(trx)
    ).rows.map((r) => r.product_id),
  );
  return { products, variants, categories, stocked };
}

type Document = {
  product_id: string;
  status: string;
  handle: string;
  title: string;
  tags_text: string;
  description: string;
  extra_text: string;
  category_ids: string[];
  tags: string[];
  attributes: string[];
  prices: Record<string, number>;
  in_stock: boolean;
  summary: unknown;
  created_at: string;
  /** The dictionary words the product gives (active products only). */
  terms: string[];
};

/** Products rebuilt per statement (a category rename may name a whole catalog). */
const INDEX_CHUNK = 500;

/**
 * Rebuilds the search documents of these products from the catalog tables, in the caller's
 * transaction (so search sees a change exactly when it commits); products that no longer exist
 * lose theirs. Active products add their words to the tenant's dictionary; words no product gives
 * any more leave it (dictionary.ts).
 */
export async function indexProducts(trx: Trx, tenantId: string, productIds: string[]): Promise<void> {
  const ids = [...new Set(productIds)];
  if (ids.length === 0) return;
  // Before the stock is read: no stock event commits between that read and the flags' write.
  await lockStockFlags(trx, tenantId, 'rebuild');
  for (let i = 0; i < ids.length; i += INDEX_CHUNK)
    await indexChunk(trx, tenantId, ids.slice(i, i + INDEX_CHUNK));
}

async function indexChunk(trx: Trx, tenantId: string, ids: string[]): Promise<void> {
  const { products, variants, categories, stocked } = await readProducts(trx, tenantId, ids);
  const variantsOf = groupBy(variants);
  const categoriesOf = groupBy(categories);
  const docs: Document[] = [];
  const terms = new Set<string>();
  for (const p of products) {
    const vs = variantsOf.get(p.id) ?? [];
    const cats = categoriesOf.get(p.id) ?? [];
    const pairs = attributePairs(
      p.attributes,
      vs.map((v) => v.options),
    );
    const ranges = minMaxPrices(vs);
    const tags = p.tags.map((t) => t.toLowerCase());
    const categoryNames = cats.map((c) => c.name).join(' ');
    const pairValues = pairs.map((pair) => pair.slice(pair.indexOf('=') + 1)).join(' ');
    const own = new Set<string>();
    if (p.status === 'active') {
      for (const text of [p.title, p.tags.join(' '), categoryNames, pairValues]) {
        for (const word of wordsOf(text)) if (word.length >= 2) own.add(word);
      }
    }
    for (const word of own) terms.add(word);
    docs.push({
      product_id: p.id,
      terms: [...own],
      status: p.status,
      handle: p.handle,
      // The text searched is NFKC-normalised, as query words are (query-text.ts): a title typed
      // in full-width letters or with decomposed accents is found by what shoppers type.
      title: searchable(p.title),
      tags_text: searchable(`${p.tags.join(' ')} ${categoryNames}`),
      description: searchable(p.description),
      extra_text: searchable(
        `${pairValues} ${vs.map((v) => `${v.title} ${v.sku} ${v.barcode ?? ''}`).join(' ')}`,
      ),
      category_ids: cats.map((c) => c.id),
      tags,
      attributes: pairs,
      prices: Object.fromEntries(Object.entries(ranges).map(([c, r]) => [c, r.min])),
      in_stock: stocked.has(p.id),
      summary: {
        id: p.id,
        handle: p.handle,
        title: p.title,
        status: p.status,
        tags: p.tags,
        image: p.images[0] ? { url: p.images[0].url, alt: p.images[0].alt ?? '' } : null,
        categories: cats
          .filter((c) => c.direct)
          .map((c) => ({ id: c.id, handle: c.handle, name: c.name }))
          .sort((a, b) => a.name.localeCompare(b.name)),
        prices: ranges,
        variantCount: vs.length,
        publishedAt: iso(p.published_at),
        createdAt: iso(p.created_at),
        updatedAt: iso(p.updated_at),
      },
      created_at: iso(p.created_at)!,
    });
  }
  // The words the old documents gave: those no new one gives may be no active product's any more.
  const { rows: old } = await sql<{ term: string }>`with gone as (delete from catalog.search_documents
      where tenant_id = ${tenantId} and product_id = any(${ids}::uuid[]) returning terms)
    select distinct t as term from gone, unnest(gone.terms) t`.execute(trx);
  const dropped = old.map((r) => r.term).filter((term) => !terms.has(term));
  await sql`delete from catalog.search_prices where tenant_id = ${tenantId} and product_id = any(${ids}::uuid[])`.execute(
    trx,
  );
  if (docs.length > 0) await writeDocuments(trx, tenantId, ids, docs, terms);
  await pruneDictionary(trx, tenantId, dropped);
}

async function writeDocuments(
  trx: Trx,
  tenantId: string,
  ids: string[],
  docs: Document[],
  terms: Set<string>,
): Promise<void> {
  await sql`insert into catalog.search_documents (tenant_id, product_id, status, handle, title, document,
      heading, category_ids, tags, attributes, prices, in_stock, summary, created_at, terms)
    select ${tenantId}, d.product_id, d.status, d.handle, d.title,
      h.heading || setweight(to_tsvector('english', d.description), 'C')
        || setweight(to_tsvector('english', d.extra_text), 'D'),
      h.heading, d.category_ids, d.tags, d.attributes, d.prices, d.in_stock, d.summary, d.created_at, d.terms
    from jsonb_to_recordset(${JSON.stringify(docs)}::jsonb) as d (product_id uuid, status text, handle text,
      title text, tags_text text, description text, extra_text text, category_ids uuid[], tags text[],
      attributes text[], prices jsonb, in_stock boolean, summary jsonb, created_at timestamptz, terms text[])
    cross join lateral (select setweight(to_tsvector('english', d.title), 'A')
      || setweight(to_tsvector('english', d.tags_text), 'B')
      || catalog.category_lexemes(d.category_ids) as heading) h`.execute(trx);
  await sql`insert into catalog.search_prices (tenant_id, product_id, currency, status, price)
    select ${tenantId}, d.product_id, p.key, d.status, p.value::bigint
    from catalog.tenant_search_documents d, jsonb_each_text(d.prices) p
    where d.tenant_id = ${tenantId} and d.product_id = any(${ids}::uuid[])`.execute(trx);
  if (terms.size > 0) {
    const list = [...terms].sort();
    await sql`insert into catalog.search_terms (tenant_id, term)
      select ${tenantId}, t from unnest(${list}::text[]) t
      where not exists (select 1 from catalog.tenant_search_terms s where s.tenant_id = ${tenantId} and s.term = t)`.execute(
      trx,
    );
  }
}
