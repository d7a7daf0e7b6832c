import { sql, type Transaction } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../../identity/users/user-test-fixtures.ts';
import { withTenant } from '../../platform/db/index.ts';
import type { ReceivedEvent } from '../../platform/events/index.ts';
import { type TestApp, testDatabaseKind, until } from '../../platform/testing/index.ts';
import { uuidv7 } from '../../platform/uuidv7.ts';
import { holdOpen } from '../catalog-test-fixtures.ts';
import { generateCatalog } from './fixture-catalog.ts';
import { openShop, type SearchShop, startSearchApp } from './search-test-app.ts';
import { applyInventoryEvents } from './stock-levels.ts';

// Three sessions at once (a rebuild, a stock event, the test's lock): PGlite has one.
describe.runIf(testDatabaseKind() === 'postgres')('a stock event meeting a rebuild of the document', () => {
  let t: TestApp;
  let shop: SearchShop;
  const db = () => t.ctx.db.kysely;

  beforeAll(async () => {
    t = await startSearchApp();
    const catalog = generateCatalog({ count: 2, seed: 5 }).map((p) => ({ ...p, status: 'active' as const }));
    shop = await openShop(t, 'flagrace', catalog);
  }, 300_000);
  afterAll(async () => {
    await t?.close();
  });

  /** Sessions waiting for a lock whose statement mentions `text`. */
  const waiting = async (text: string) => {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and query ilike ${`%${text}%`}`.execute(
      db(),
    );
    return rows[0]!.n;
  };

  it('keeps the in-stock flag the event set when it commits while the rebuild runs', async () => {
    const productId = shop.productIds[0]!;
    let items: { id: string; variantId: string }[] = [];
    await until(async () => {
      const res = await send(t.app, 'GET', `/api/v1/inventory?productId=${productId}`, shop.staff);
      items = res.json<{ items: typeof items }>().items ?? [];
      return res.statusCode === 200 && items.length > 0;
    }, 'the product’s inventory item');
    const item = items[0]!;
    const { locationId } = (await send(t.app, 'GET', `/api/v1/inventory/${item.id}`, shop.staff)).json<{
      locationId: string;
    }>();
    const stockEvent = (available: number, at: string): ReceivedEvent => ({
      id: uuidv7(),
      type: 'mercato.inventory.stock-changed',
      source: 'test',
      subject: item.id,
      time: at,
      tenantid: shop.id,
      data: {
        variantId: item.variantId,
        locationId,
        productId,
        available,
        allowBackorder: false,
        updatedAt: at,
      },
    });
    const apply = (event: ReceivedEvent) =>
      withTenant(db(), shop.id, (trx) => applyInventoryEvents(trx, [event]));
    const inStock = async () => {
      const { rows } = await sql<{ in_stock: boolean }>`select in_stock from catalog.search_documents
        where product_id = ${productId}`.execute(db());
      return rows[0]?.in_stock;
    };
    await apply(stockEvent(0, '2031-01-01T00:00:01.000Z'));
    expect(await inStock()).toBe(false);

    // The test holds the document's row: a rename's rebuild (which has read the stock by then)
    // waits for it at the document's delete.
    const holder = await holdOpen<Transaction<unknown>>(
      (body) => db().transaction().execute(body),
      (trx) =>
        sql`select 1 from catalog.search_documents where product_id = ${productId} for update`.execute(trx),
    );
    const version = (await send(t.app, 'GET', `/api/v1/products/${productId}`, shop.staff)).json<{
      version: number;
    }>().version;
    const rename = send(
      t.app,
      'PUT',
      `/api/v1/products/${productId}`,
      { ...shop.staff, 'if-match': `"${version}"` },
      { title: 'Renamed While Restocked', status: 'active' },
    );
    await until(async () => (await waiting('search_documents')) >= 1, 'the rebuild to wait for the document');
    // Units arrive meanwhile: the event is applied while the rebuild is under way.
    let applied = false;
    const restock = apply(stockEvent(4, '2031-01-01T00:00:02.000Z')).finally(() => {
      applied = true;
    });
    await until(async () => applied || (await waiting('')) >= 2, 'the stock event to apply or wait');
    await holder.release();
    expect((await rename).statusCode).toBe(200);
    await restock;
    // The document is the rename's, and in stock as the event left the item.
    const { rows } = await sql<{ title: string; in_stock: boolean }>`select title, in_stock
      from catalog.search_documents where product_id = ${productId}`.execute(db());
    expect(rows).toEqual([{ title: 'Renamed While Restocked', in_stock: true }]);
  }, 120_000);
});
