import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { until } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { createCampaignCache } from './campaign-cache.ts';
import { createSale, type FlashTestApp, saleVariant, startFlashApp } from './flash-test-fixtures.ts';
import type { FlashSalesDb } from './tables.ts';

let t: FlashTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startFlashApp();
  shop = await createShop(t, 'fs-cache');
});
afterAll(() => t?.close());

/** A cache on the test app's database with a clock the test moves. */
function cacheAt(start: number) {
  const clock = { now: start };
  const cache = createCampaignCache(t.ctx.db.kysely as unknown as FlashSalesDb, () => clock.now);
  return { cache, clock };
}

const renameSale = (id: string, name: string) =>
  withSystem(t.ctx.db.kysely, (trx) =>
    sql`update flash_sales.campaigns set name = ${name} where id = ${id}`.execute(trx),
  );

/** The test app's database, with every read of a campaign counted, and failed while `down`. */
function countedDb() {
  const reads = { count: 0, down: false };
  const db = t.ctx.db.kysely.withPlugin({
    transformQuery: ({ node }) => {
      if (node.kind === 'SelectQueryNode' && JSON.stringify(node.from).includes('"campaigns"')) {
        reads.count += 1;
        if (reads.down) throw new Error('the database is down');
      }
      return node;
    },
    transformResult: async ({ result }) => result,
  });
  return { db: db as unknown as FlashSalesDb, reads };
}

describe('the campaign cache', () => {
  it('serves a read for a second, and a peek never waits for the database', async () => {
    const sale = await createSale(t, shop, await saleVariant(t, shop, 10));
    const { cache, clock } = cacheAt(1_000_000);
    expect(cache.peek(shop.id, sale.id)).toBeUndefined();
    expect((await cache.get(shop.id, sale.id))?.id).toBe(sale.id);
    expect(cache.peek(shop.id, sale.id)?.id).toBe(sale.id);
    clock.now += 1000;
    expect(cache.peek(shop.id, sale.id)).toBeUndefined();
  });

  it('reads again in the background when a peek finds the entry older than 750 ms, so steady traffic never finds it expired', async () => {
    const sale = await createSale(t, shop, await saleVariant(t, shop, 10));
    const { cache, clock } = cacheAt(2_000_000);
    await cache.get(shop.id, sale.id);
    await renameSale(sale.id, 'Renamed while cached');
    clock.now += 500;
    expect(cache.peek(shop.id, sale.id)?.name).toBe('Midnight drop');
    await new Promise((resolve) => setTimeout(resolve, 100)); // no read was started to come back
    expect(cache.peek(shop.id, sale.id)?.name).toBe('Midnight drop');
    clock.now += 300; // 800 ms: still served, and a read starts
    expect(cache.peek(shop.id, sale.id)?.name).toBe('Midnight drop');
    await until(() => cache.peek(shop.id, sale.id)?.name === 'Renamed while cached', 'the background read');
    clock.now += 700; // 1,500 ms after the first read, 700 ms after the second
    expect(cache.peek(shop.id, sale.id)?.name).toBe('Renamed while cached');
  });

  it('starts one background read per entry, not one per peek when that read fails', async () => {
    const sale = await createSale(t, shop, await saleVariant(t, shop, 10));
    const clock = { now: 4_000_000 };
    const { db, reads } = countedDb();
    const cache = createCampaignCache(db, () => clock.now);
    await cache.get(shop.id, sale.id);
    expect(reads.count).toBe(1);
    reads.down = true;
    clock.now += 800;
    for (let i = 0; i < 20; i++) {
      expect(cache.peek(shop.id, sale.id)?.id).toBe(sale.id); // still served until it lapses
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(reads.count).toBe(2);
    clock.now += 200;
    expect(cache.peek(shop.id, sale.id)).toBeUndefined();
    await expect(cache.get(shop.id, sale.id)).rejects.toThrow('the database is down');
  });

  it('keeps no read that a drop overtook', async () => {
    const sale = await createSale(t, shop, await saleVariant(t, shop, 10));
    const { cache, clock } = cacheAt(3_000_000);
    await cache.get(shop.id, sale.id);
    clock.now += 800;
    cache.peek(shop.id, sale.id); // starts a read
    cache.drop(shop.id, sale.id); // a change made in this process, as the read is in flight
    await new Promise((resolve) => setTimeout(resolve, 500)); // the read comes back meanwhile
    expect(cache.peek(shop.id, sale.id)).toBeUndefined();
    expect((await cache.get(shop.id, sale.id))?.id).toBe(sale.id);
  });

  it('forgets the ids it read once they lapse, so attempts naming fresh ids of no sale cannot grow the process', async () => {
    const sale = await createSale(t, shop, await saleVariant(t, shop, 10));
    const { cache, clock } = cacheAt(5_000_000);
    // An attempt every 100 ms (within a customer's limits), each naming an id of no sale: 30 seconds.
    for (let i = 0; i < 300; i++) {
      expect(await cache.get(shop.id, uuidv7())).toBeUndefined();
      clock.now += 100;
    }
    // What a read or a peek can still serve (the last second's) and little more: not 300 entries.
    expect(cache.size()).toBeLessThanOrEqual(20);
    // The sale itself is read and served as before.
    expect((await cache.get(shop.id, sale.id))?.id).toBe(sale.id);
    expect(cache.peek(shop.id, sale.id)?.id).toBe(sale.id);
  });
});
