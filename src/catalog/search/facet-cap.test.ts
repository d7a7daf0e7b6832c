import { sql } from 'kysely';
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
import { FACET_CAP } from './facets.ts';

type Facets = { matched: number; exact: boolean; inStock: { inStock: number; outOfStock: number } };

let t: CatalogTestApp;
let shop: Shop;

// FACET_CAP + 1 active products in one statement: all tagged `bulk`, the first FACET_CAP also
// `capped`; their search documents built by the indexer (reindexProducts).
beforeAll(async () => {
  t = await startCatalogApp();
  shop = await createShop(t, 'facet-cap');
  const db = t.ctx.db.kysely as CatalogDb;
  await withTenant(db, shop.id, (trx) =>
    sql`insert into catalog.products (id, tenant_id, handle, title, status, tags)
      select gen_random_uuid(), ${shop.id}, 'bulk-' || n, 'Bulk Item ' || n, 'active',
        case when n <= ${FACET_CAP} then array['bulk', 'capped'] else array['bulk'] end
      from generate_series(1, ${FACET_CAP + 1}) n`.execute(trx),
  );
  expect(await reindexProducts(db, shop.id)).toBe(FACET_CAP + 1);
}, 180_000);
afterAll(async () => {
  await t?.close();
});

async function facetsOf(tag: string): Promise<Facets> {
  const res = await send(t.app, 'GET', `/api/v1/products?tag=${tag}&facets=true&limit=1`, shop.anonymous);
  expect(res.statusCode).toBe(200);
  return res.json<{ facets: Facets }>().facets;
}

describe('facet cap', () => {
  it('says the counts are exact when exactly FACET_CAP products match', async () => {
    const facets = await facetsOf('capped');
    expect(facets.matched).toBe(FACET_CAP);
    expect(facets.exact).toBe(true);
    expect(facets.inStock).toEqual({ inStock: 0, outOfStock: FACET_CAP });
  });

  it('says they are not past it, and counts FACET_CAP products', async () => {
    const facets = await facetsOf('bulk');
    expect(facets.matched).toBe(FACET_CAP);
    expect(facets.exact).toBe(false);
    expect(facets.inStock).toEqual({ inStock: 0, outOfStock: FACET_CAP });
  });
});
