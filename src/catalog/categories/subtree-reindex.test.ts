import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import { testDatabaseKind } from '../../platform/testing/index.ts';
import {
  type CatalogTestApp,
  createShop,
  productBody,
  productEvents,
  type Shop,
  send,
  startCatalogApp,
  until,
} from '../catalog-test-fixtures.ts';
import type { CatalogDb } from '../tables.ts';
import { INLINE_REINDEX_LIMIT, SUBTREE_REINDEX_TYPE } from './subtree-reindex.ts';

let t: CatalogTestApp;
const db = () => t.ctx.db.kysely as CatalogDb;

beforeAll(async () => {
  t = await startCatalogApp();
}, 120_000);
afterAll(async () => {
  await t?.close();
});

/** A category of the shop holding `count` new products (imported 1,000 per request). */
async function categoryWith(
  shop: Shop,
  name: string,
  count: number,
): Promise<{ id: string; products: string[] }> {
  const created = await send(t.app, 'POST', '/api/v1/categories', shop.staff, { name });
  expect(created.statusCode).toBe(201);
  const category = created.json<{ id: string }>();
  const products: string[] = [];
  for (let i = 0; i < count; i += 1000) {
    const rows = Array.from({ length: Math.min(1000, count - i) }, () =>
      productBody({ categoryIds: [category.id] }),
    );
    const res = await send(t.app, 'POST', '/api/v1/products/batch', shop.staff, { products: rows });
    expect(res.statusCode).toBe(207);
    for (const r of res.json<{ results: Array<{ status: string; id?: string }> }>().results) {
      expect(r.status).toBe('created');
      products.push(r.id!);
    }
  }
  return { id: category.id, products };
}

/** The shop's products whose search document's heading holds the word. */
async function namedBy(shop: Shop, word: string): Promise<Set<string>> {
  const { rows } = await sql<{ product_id: string }>`select product_id from catalog.search_documents
    where tenant_id = ${shop.id} and heading @@ plainto_tsquery('english', ${word})`.execute(db());
  return new Set(rows.map((r) => r.product_id));
}

const reindexSteps = async (shop: Shop) =>
  (await productEvents(t, shop.id)).filter((e) => e.type === SUBTREE_REINDEX_TYPE);

describe('a renamed or moved category rebuilds its products’ search documents', () => {
  it('in the write itself for a small subtree: search shows the new name as the write answers', async () => {
    const shop = await createShop(t, 'subtree-small');
    const { id, products } = await categoryWith(shop, 'Plain Hats', 3);
    const res = await send(t.app, 'PUT', `/api/v1/categories/${id}`, shop.staff, { name: 'Quillwear' });
    expect(res.statusCode).toBe(200);
    expect(await namedBy(shop, 'quillwear')).toEqual(new Set(products));
    expect(await reindexSteps(shop)).toEqual([]);
  });

  it('in batches after the write for a large subtree, each batch sending the next, until every product names it', async () => {
    const shop = await createShop(t, 'subtree-large');
    const count = 2 * INLINE_REINDEX_LIMIT + 100;
    const { id, products } = await categoryWith(shop, 'Plain Coats', count);
    const res = await send(t.app, 'PUT', `/api/v1/categories/${id}`, shop.staff, { name: 'Zephyrwear' });
    expect(res.statusCode).toBe(200);
    await until(
      async () => (await namedBy(shop, 'zephyrwear')).size === count,
      'every document to be rebuilt',
    );
    expect(await namedBy(shop, 'zephyrwear')).toEqual(new Set(products));
    // Three batches: from the start, then after the 500th and the 1,000th product (by id).
    const sorted = [...products].sort();
    const steps = await reindexSteps(shop);
    expect(steps.map((s) => s.data)).toEqual([
      { categoryId: id, after: null },
      { categoryId: id, after: sorted[INLINE_REINDEX_LIMIT - 1] },
      { categoryId: id, after: sorted[2 * INLINE_REINDEX_LIMIT - 1] },
    ]);
    // Mercato's own messages: a webhook of the tenant on product-events never receives them.
    const { rows } = await withTenant(db(), shop.id, (trx) =>
      sql<{ internal: string | null }>`select headers->>'mercato-internal' as internal from wal.messages
        where namespace = 'product-events' and headers->>'ce-type' = ${SUBTREE_REINDEX_TYPE}`.execute(trx),
    );
    expect(rows.map((r) => r.internal)).toEqual(['true', 'true', 'true']);
  }, 180_000);

  // Two connections at once: PGlite has one.
  it.runIf(testDatabaseKind() === 'postgres')(
    'rebuilds a product a writer holds during its batch once the writer is done',
    async () => {
      const shop = await createShop(t, 'subtree-held');
      const count = INLINE_REINDEX_LIMIT + 20;
      const { id, products } = await categoryWith(shop, 'Plain Scarves', count);
      const heldId = products[7]!;
      let commit!: () => void;
      const released = new Promise<void>((resolve) => {
        commit = resolve;
      });
      let holding!: () => void;
      const locked = new Promise<void>((resolve) => {
        holding = resolve;
      });
      const writer = withTenant(db(), shop.id, async (trx) => {
        await sql`select id from catalog.products where id = ${heldId} for update`.execute(trx);
        holding();
        await released;
      });
      await locked;
      const res = await send(t.app, 'PUT', `/api/v1/categories/${id}`, shop.staff, { name: 'Yarrowknit' });
      expect(res.statusCode).toBe(200);
      await until(
        async () => (await namedBy(shop, 'yarrowknit')).size === count - 1,
        'the free products to be rebuilt',
      );
      expect((await namedBy(shop, 'yarrowknit')).has(heldId)).toBe(false);
      commit();
      await writer;
      await until(
        async () => (await namedBy(shop, 'yarrowknit')).has(heldId),
        'the held product to be rebuilt',
      );
      expect((await reindexSteps(shop)).map((s) => s.data)).toContainEqual({
        categoryId: id,
        productId: heldId,
        attempt: 0,
      });
    },
    180_000,
  );
});
