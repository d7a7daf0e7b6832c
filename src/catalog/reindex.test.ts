import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../platform/db/index.ts';
import { testDatabaseKind } from '../platform/testing/index.ts';
import {
  type CatalogTestApp,
  createProduct,
  createShop,
  holdOpen,
  makeDocumentPreNfkc,
  type Shop,
  send,
  startCatalogApp,
  until,
} from './catalog-test-fixtures.ts';
import { reindexProducts } from './index.ts';
import type { CatalogDb, CatalogTrx } from './tables.ts';

let t: CatalogTestApp;
let shop: Shop;
const db = () => t.ctx.db.kysely as CatalogDb;

beforeAll(async () => {
  t = await startCatalogApp();
  shop = await createShop(t, 'reindex-shop');
}, 120_000);
afterAll(async () => {
  await t?.close();
});

/** The ids a shopper's search for q finds. */
async function found(q: string): Promise<string[]> {
  const res = await send(
    t.app,
    'GET',
    `/api/v1/products?q=${encodeURIComponent(q)}&limit=50`,
    shop.anonymous,
  );
  expect(res.statusCode).toBe(200);
  return res.json<{ items: Array<{ id: string }> }>().items.map((i) => i.id);
}

describe('reindexProducts', () => {
  it('rebuilds documents written before NFKC indexing, batch by batch, so search finds them again', async () => {
    const usb = await createProduct(t, shop, { title: 'ＵＳＢ Ｃｈａｒｇｅｒ', handle: 'usb-charger' });
    for (let i = 0; i < 4; i++) await createProduct(t, shop);
    expect(await found('usb')).toEqual([usb.id]);

    await makeDocumentPreNfkc(t, usb.id);
    await until(async () => (await found('usb')).length === 0, 'the stale document to be searched');

    // Batches of 2: five products take three transactions, each after the previous one's last handle.
    expect(await reindexProducts(db(), shop.id, { batchSize: 2 })).toBe(5);
    await until(async () => (await found('usb')).includes(usb.id), 'the rebuilt document to be found');
    expect(await found('charger')).toEqual([usb.id]);
  }, 120_000);

  it('answers 0 for a tenant without products', async () => {
    const empty = await createShop(t, 'reindex-empty');
    expect(await reindexProducts(db(), empty.id)).toBe(0);
  });

  // Two connections at once: PGlite has one.
  it.runIf(testDatabaseKind() === 'postgres')(
    'waits for a product being edited and rebuilds it as the edit committed it',
    async () => {
      const kettle = await createProduct(t, shop, { title: 'Copper Kettle', handle: 'copper-kettle' });
      // A writer mid-edit: the product's row locked and changed, not yet committed.
      const writer = await holdOpen<CatalogTrx>(
        (body) => withTenant(db(), shop.id, (trx) => body(trx as CatalogTrx)),
        async (trx) => {
          await sql`select id from catalog.products where id = ${kettle.id} for update`.execute(trx);
          await sql`update catalog.products set title = 'Brass Samovar', version = version + 1
            where id = ${kettle.id}`.execute(trx);
        },
      );
      let finished = false;
      const reindex = reindexProducts(db(), shop.id).finally(() => {
        finished = true;
      });
      const waiting = async () => {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and query ilike '%for share%'`.execute(
          db(),
        );
        return rows[0]!.n > 0;
      };
      await until(async () => finished || (await waiting()), 'the reindex to wait for the edited product');
      await writer.release();
      expect(await reindex).toBeGreaterThan(0);
      const { rows } = await sql<{ title: string }>`select title from catalog.search_documents
        where product_id = ${kettle.id}`.execute(db());
      expect(rows.map((r) => r.title)).toEqual(['Brass Samovar']);
    },
  );
});
