import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import {
  type CatalogTestApp,
  createProduct,
  createShop,
  type Shop,
  send,
  startCatalogApp,
} from '../catalog-test-fixtures.ts';
import { reindexProducts } from '../index.ts';
import type { CatalogDb } from '../tables.ts';

let t: CatalogTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startCatalogApp();
  shop = await createShop(t, 'words');
}, 120_000);
afterAll(() => t?.close());

/** What autocomplete offers for the prefix, as a shopper sees it. */
async function suggested(prefix: string): Promise<string[]> {
  const res = await send(t.app, 'GET', `/api/v1/products/suggest?q=${prefix}`, shop.anonymous);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ terms: string[] }>().terms;
}

/** The rows of the shop's dictionary. */
const dictionarySize = () =>
  withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from catalog.tenant_search_terms
      where tenant_id = ${shop.id}`.execute(trx);
    return rows[0]!.n;
  });

describe('the search dictionary', () => {
  it('stops suggesting the words of a deleted product', async () => {
    const p = await createProduct(t, shop, { title: 'Zephyrine Lamp' });
    expect(await suggested('zephyr')).toEqual(['zephyrine']);
    const res = await send(t.app, 'DELETE', `/api/v1/products/${p.id}`, shop.staff);
    expect(res.statusCode).toBe(204);
    expect(await suggested('zephyr')).toEqual([]);
  });

  it("stops suggesting a renamed product's old word and an archived product's words", async () => {
    const p = await createProduct(t, shop, { title: 'Quillowby Chair', tags: ['marrowvale'] });
    const renamed = await send(t.app, 'PUT', `/api/v1/products/${p.id}`, shop.staff, {
      title: 'Quillstone Chair',
      status: 'active',
      tags: ['marrowvale'],
    });
    expect(renamed.statusCode, renamed.body).toBe(200);
    expect(await suggested('quill')).toEqual(['quillstone']);
    expect(await suggested('marrow')).toEqual(['marrowvale']);
    const archived = await send(t.app, 'PUT', `/api/v1/products/${p.id}`, shop.staff, {
      title: 'Quillstone Chair',
      status: 'archived',
    });
    expect(archived.statusCode, archived.body).toBe(200);
    expect(await suggested('quill')).toEqual([]);
    expect(await suggested('marrow')).toEqual([]);
  });

  it('keeps a word another active product still has', async () => {
    const a = await createProduct(t, shop, { title: 'Brindlewick Mug' });
    await createProduct(t, shop, { title: 'Brindlewick Plate' });
    await send(t.app, 'DELETE', `/api/v1/products/${a.id}`, shop.staff);
    expect(await suggested('brindle')).toEqual(['brindlewick']);
  });

  it('does not grow with products created and deleted', async () => {
    const before = await dictionarySize();
    const res = await send(t.app, 'POST', '/api/v1/products/batch', shop.staff, {
      products: Array.from({ length: 40 }, (_, i) => ({
        title: `Transient${i}x Widget`,
        handle: `transient-${i}`,
        status: 'active',
        variants: [{ sku: `TRANSIENT-${i}`, prices: { USD: 100 } }],
      })),
    });
    expect(res.statusCode).toBe(207);
    expect(await dictionarySize()).toBeGreaterThanOrEqual(before + 40);
    for (const row of res.json<{ results: Array<{ id: string }> }>().results)
      await send(t.app, 'DELETE', `/api/v1/products/${row.id}`, shop.staff);
    expect(await dictionarySize()).toBe(before);
  });

  it('prunes nothing while an active document predates its words; the reindex then sweeps every word', async () => {
    const a = await createProduct(t, shop, { title: 'Oldfangled Kettle' });
    const b = await createProduct(t, shop, { title: 'Oldfangled Pot' });
    // As a document written before migration 0064 is, and a word of a product deleted back then.
    await sql`update catalog.search_documents set terms = null where product_id = ${a.id}`.execute(
      t.ctx.db.kysely,
    );
    await sql`insert into catalog.search_terms (tenant_id, term) values (${shop.id}, 'ghostword')`.execute(
      t.ctx.db.kysely,
    );
    await send(t.app, 'DELETE', `/api/v1/products/${b.id}`, shop.staff);
    expect(await suggested('oldfang')).toEqual(['oldfangled']);
    await reindexProducts(t.ctx.db.kysely as CatalogDb, shop.id);
    expect(await suggested('ghostw')).toEqual([]);
    expect(await suggested('oldfang')).toEqual(['oldfangled']);
  });
});
