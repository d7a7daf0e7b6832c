import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import { testDatabaseKind } from '../../platform/testing/index.ts';
import {
  type CatalogTestApp,
  createShop,
  holdOpen,
  productBody,
  productEvents,
  type Shop,
  send,
  startCatalogApp,
  until,
} from '../catalog-test-fixtures.ts';
import type { CatalogDb, CatalogTrx } from '../tables.ts';
import { lockCategoryWrites } from './category-lock.ts';
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

/** The shop's reindex steps not delivered yet. */
const stepsPending = async (shop: Shop) =>
  withTenant(db(), shop.id, async (trx) => {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from wal.messages
      where namespace = 'product-events' and headers->>'ce-type' = ${SUBTREE_REINDEX_TYPE}
        and state <> 'delivered'`.execute(trx);
    return rows[0]!.n;
  });

/** Transactions of this database waiting for an advisory lock (PostgreSQL: PGlite has one session). */
const lockWaiters = async () => {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_locks
    where locktype = 'advisory' and not granted
      and database = (select oid from pg_database where datname = current_database())`.execute(db());
  return rows[0]!.n;
};

const token = expect.any(String);

/** Runs take in a transaction of the shop that stays open, its locks held, until release(). */
const holding = (shop: Shop, take: (trx: CatalogTrx) => Promise<unknown>) =>
  holdOpen<CatalogTrx>((body) => withTenant(db(), shop.id, (trx) => body(trx as CatalogTrx)), take);

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
      { categoryId: id, after: null, token },
      { categoryId: id, after: sorted[INLINE_REINDEX_LIMIT - 1], token },
      { categoryId: id, after: sorted[2 * INLINE_REINDEX_LIMIT - 1], token },
    ]);
    expect(new Set(steps.map((s) => s.data['token'])).size).toBe(1);
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
      const writer = await holding(shop, (trx) =>
        sql`select id from catalog.products where id = ${heldId} for update`.execute(trx),
      );
      const res = await send(t.app, 'PUT', `/api/v1/categories/${id}`, shop.staff, { name: 'Yarrowknit' });
      expect(res.statusCode).toBe(200);
      await until(
        async () => (await namedBy(shop, 'yarrowknit')).size === count - 1,
        'the free products to be rebuilt',
      );
      expect((await namedBy(shop, 'yarrowknit')).has(heldId)).toBe(false);
      await writer.release();
      await until(
        async () => (await namedBy(shop, 'yarrowknit')).has(heldId),
        'the held product to be rebuilt',
      );
      expect((await reindexSteps(shop)).map((s) => s.data)).toContainEqual({
        categoryId: id,
        productId: heldId,
        attempt: 0,
        token,
      });
    },
    180_000,
  );

  it('ends the rebuild a rename started when the category is renamed again: renames in a row rebuild its subtree once', async () => {
    const shop = await createShop(t, 'subtree-renamed');
    const count = INLINE_REINDEX_LIMIT + 20;
    const { id } = await categoryWith(shop, 'Plain Gloves', count);
    // The tenant's category lock held: the renames queue up behind it and commit one after another
    // before any batch runs (a batch takes the lock too, and asks for it only after a commit).
    const holder = await holding(shop, (trx) => lockCategoryWrites(trx, shop.id));
    const names = ['Alderknit', 'Birchknit', 'Cedarknit', 'Dogwoodknit'];
    const renames = [];
    for (const name of names) {
      renames.push(send(t.app, 'PUT', `/api/v1/categories/${id}`, shop.staff, { name }));
      if (testDatabaseKind() === 'postgres')
        await until(async () => (await lockWaiters()) === renames.length, 'the rename to wait for the lock');
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await holder.release();
    for (const response of await Promise.all(renames)) expect(response.statusCode).toBe(200);
    const last = (await send(t.app, 'GET', `/api/v1/categories/${id}`, shop.anonymous)).json<{
      name: string;
    }>();
    await until(
      async () => (await namedBy(shop, last.name)).size === count && (await stepsPending(shop)) === 0,
      'the last rename to be rebuilt and every step delivered',
    );
    // Each rename sent its first batch; only the last one's went on (the 20 products past the 500th).
    // Before, each of the four rebuilt the whole subtree: eight batches of up to 500 products.
    const steps = await reindexSteps(shop);
    expect(steps.length).toBe(names.length + 1);
    expect(steps.filter((s) => s.data['after'] !== null)).toHaveLength(1);
  }, 180_000);
});
