import { type KyselyPlugin, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import {
  type CatalogTestApp,
  createShop,
  type Shop,
  send,
  startCatalogApp,
} from '../catalog-test-fixtures.ts';
import { reindexProducts } from '../index.ts';
import type { CatalogDb } from '../tables.ts';
import { bandEdges, type Facets, facetCounts } from './facets.ts';

const PRODUCTS = 600;
let t: CatalogTestApp;
let shop: Shop;
const db = () => t.ctx.db.kysely as CatalogDb;

/**
 * PRODUCTS active products tagged `bulk`, titled "Facet Item n", in one statement each: a colour
 * (5 values), a size (7), 40 serial numbers of their own (24,000 distinct values of one
 * attribute) and x0…x34 (35 names, a product n has n % 35 + 1 of them); a USD price; a third in
 * `leaf` (under `root`), a third in `root`. Their search documents built by the indexer.
 */
beforeAll(async () => {
  t = await startCatalogApp();
  shop = await createShop(t, 'facet-rows');
  await withTenant(db(), shop.id, async (trx) => {
    await sql`insert into catalog.categories (id, tenant_id, parent_id, name, handle)
      values ('00000000-0000-7000-8000-000000000001', ${shop.id}, null, 'Root', 'root'),
        ('00000000-0000-7000-8000-000000000002', ${shop.id}, '00000000-0000-7000-8000-000000000001', 'Leaf', 'leaf')`.execute(
      trx,
    );
    await sql`insert into catalog.products (id, tenant_id, handle, title, status, tags, attributes)
      select gen_random_uuid(), ${shop.id}, 'item-' || n, 'Facet Item ' || n, 'active', array['bulk'],
        jsonb_build_object('colour', (array['red', 'blue', 'green', 'black', 'white'])[n % 5 + 1],
          'size', 'S' || (n % 7),
          'serial', (select jsonb_agg('s' || n || '-' || k) from generate_series(1, 40) k))
        || (select jsonb_object_agg('x' || k, 'y') from generate_series(0, n % 35) k)
      from generate_series(1, ${PRODUCTS}) n`.execute(trx);
    await sql`insert into catalog.variants (id, tenant_id, product_id, sku, prices)
      select gen_random_uuid(), ${shop.id}, p.id, 'SKU-' || p.handle,
        jsonb_build_object('USD', (substr(p.handle, 6)::int * 7919) % 800000)
      from catalog.products p where p.tenant_id = ${shop.id}`.execute(trx);
    await sql`insert into catalog.product_categories (tenant_id, product_id, category_id)
      select ${shop.id}, p.id, case substr(p.handle, 6)::int % 3
          when 0 then '00000000-0000-7000-8000-000000000002'::uuid
          else '00000000-0000-7000-8000-000000000001'::uuid end
      from catalog.products p where p.tenant_id = ${shop.id} and substr(p.handle, 6)::int % 3 <> 2`.execute(
      trx,
    );
  });
  expect(await reindexProducts(db(), shop.id)).toBe(PRODUCTS);
}, 180_000);
afterAll(() => t?.close());

const byCodePoint = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** The facets of the bulk products as counted straight from their documents, one SQL count each. */
async function countedDirectly(): Promise<Omit<Facets, 'categories'> & { categories: Map<string, number> }> {
  return withTenant(db(), shop.id, async (trx) => {
    const where = sql`tenant_id = ${shop.id} and status = 'active' and 'bulk' = any(tags)`;
    const categories = (
      await sql<{ id: string; n: number }>`select c as id, count(*)::int as n
        from catalog.tenant_search_documents, unnest(category_ids) c where ${where} group by c`.execute(trx)
    ).rows;
    const pairs = (
      await sql<{ pair: string; n: number }>`select a as pair, count(*)::int as n
        from catalog.tenant_search_documents, unnest(attributes) a where ${where} group by a`.execute(trx)
    ).rows;
    const prices = (
      await sql<{ price: string }>`select prices ->> 'USD' as price from catalog.tenant_search_documents
        where ${where}`.execute(trx)
    ).rows.map((r) => Number(r.price));
    const byName = new Map<string, Array<{ value: string; count: number }>>();
    for (const { pair, n } of pairs) {
      const cut = pair.indexOf('=');
      const list = byName.get(pair.slice(0, cut)) ?? [];
      list.push({ value: pair.slice(cut + 1), count: n });
      byName.set(pair.slice(0, cut), list);
    }
    const edges = bandEdges('USD');
    return {
      matched: PRODUCTS,
      exact: true,
      categories: new Map(categories.map((c) => [c.id, c.n])),
      attributes: [...byName.keys()]
        .sort(byCodePoint)
        .slice(0, 30)
        .map((name) => ({
          name,
          values: byName
            .get(name)!
            .sort((a, b) => b.count - a.count || byCodePoint(a.value, b.value))
            .slice(0, 30),
        })),
      prices: edges
        .map((min, i) => ({
          currency: 'USD',
          min,
          max: edges[i + 1] ?? null,
          count: prices.filter((p) => p >= min && (edges[i + 1] === undefined || p < edges[i + 1]!)).length,
        }))
        .filter((band) => band.count > 0),
      inStock: { inStock: 0, outOfStock: PRODUCTS },
    };
  });
}

/** The facets GET /products answers a shopper for the query. */
async function answered(query: string): Promise<Facets> {
  const res = await send(t.app, 'GET', `/api/v1/products?${query}&facets=true&limit=1`, shop.anonymous);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ facets: Facets }>().facets;
}

/** How many rows the database sends to Node for the facets of a broad search (all bulk products). */
async function rowsRead(words?: string[]): Promise<number> {
  let rows = 0;
  const counter: KyselyPlugin = {
    transformQuery: (args) => args.node,
    transformResult: async (args) => {
      rows += args.result.rows.length;
      return args.result;
    },
  };
  await withTenant(db(), shop.id, (trx) =>
    facetCounts(
      trx.withPlugin(counter),
      shop.id,
      { statuses: ['active'], tags: ['bulk'], attributes: [], currency: 'USD' },
      words?.map((w) => [w]),
    ),
  );
  return rows;
}

describe('facet counts', () => {
  it('equal a direct SQL count of the matches, with and without text', async () => {
    const expected = await countedDirectly();
    for (const query of ['tag=bulk&currency=USD', 'q=facet+item&tag=bulk&currency=USD']) {
      const { categories, ...rest } = await answered(query);
      expect(rest).toEqual({ ...expected, categories: undefined, attributes: expected.attributes });
      expect(new Map(categories.map((c) => [c.id, c.count]))).toEqual(expected.categories);
    }
    expect(expected.attributes.map((a) => a.name)).toContain('serial');
    expect(expected.categories.get('00000000-0000-7000-8000-000000000001')).toBe(400);
  });

  it('come to Node as one row per value shown, not one per distinct value matched', async () => {
    // 1 total + 2 categories + 30 names x 30 values at most + 2 stock + 11 price bands, and the 2 categories' names.
    const bound = 1 + 2 + 30 * 30 + 2 + 11 + 2;
    expect(await rowsRead()).toBeLessThanOrEqual(bound);
    expect(await rowsRead(['facet'])).toBeLessThanOrEqual(bound);
  });
});
