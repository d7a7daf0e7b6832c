import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../../identity/users/user-test-fixtures.ts';
import { withTenant } from '../../platform/db/index.ts';
import type { ReceivedEvent } from '../../platform/events/index.ts';
import type { TestApp } from '../../platform/testing/index.ts';
import { uuidv7 } from '../../platform/uuidv7.ts';
import { generateCatalog } from './fixture-catalog.ts';
import { openShop, type SearchShop, startSearchApp } from './search-test-app.ts';
import { applyInventoryEvents } from './stock-levels.ts';

type Item = { id: string; title: string; inStock: boolean };
type Page = {
  items: Item[];
  nextCursor: string | null;
  facets?: { inStock: { inStock: number; outOfStock: number } };
};

const CATALOG = generateCatalog({ count: 16, seed: 3 }).map((p) => ({ ...p, status: 'active' as const }));

let t: TestApp;
let shop: SearchShop;

beforeAll(async () => {
  t = await startSearchApp();
  shop = await openShop(t, 'freshshop', CATALOG);
}, 300_000);

afterAll(async () => {
  await t?.close();
});

async function list(url: string, headers = shop.anonymous): Promise<Page> {
  const res = await send(t.app, 'GET', url, headers);
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
  return res.json<Page>();
}

/** Polls until check() holds (events reach search asynchronously; no timing is asserted). */
async function until(check: () => Promise<boolean>, what: string) {
  const stop = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > stop) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

type StockItem = { id: string; variantId: string; available: number };

/** The inventory items of a product (inventory creates them from product events). */
async function itemsOf(productId: string): Promise<StockItem[]> {
  let items: StockItem[] = [];
  await until(async () => {
    const res = await send(t.app, 'GET', `/api/v1/inventory?productId=${productId}`, shop.staff);
    items = res.json<{ items: StockItem[] }>().items;
    return res.statusCode === 200 && items.length > 0;
  }, `inventory items of ${productId}`);
  return items;
}

const inStockIds = async () =>
  new Set((await list('/api/v1/products?inStock=true&limit=100')).items.map((i) => i.id));

describe('in stock follows inventory events', () => {
  it('stock set, reserved away and released moves a product in and out of the in-stock filter', async () => {
    expect((await inStockIds()).size).toBe(0);
    const stocked = [shop.productIds[0]!, shop.productIds[5]!, shop.productIds[9]!];
    const variants: string[] = [];
    const itemIds: string[] = [];
    for (const productId of stocked) {
      const [item] = await itemsOf(productId);
      const res = await send(t.app, 'PUT', `/api/v1/inventory/${item!.id}/stock`, shop.staff, {
        set: 2,
        reason: 'stock count',
      });
      expect(res.statusCode).toBe(200);
      variants.push(item!.variantId);
      itemIds.push(item!.id);
    }
    await until(async () => (await inStockIds()).size === 3, 'three products in stock');
    expect(await inStockIds()).toEqual(new Set(stocked));
    const { facets } = await list('/api/v1/products?facets=true&limit=1');
    expect(facets!.inStock).toEqual({ inStock: 3, outOfStock: CATALOG.length - 3 });
    const outOfStock = await list('/api/v1/products?inStock=false&limit=100');
    expect(outOfStock.items).toHaveLength(CATALOG.length - 3);

    // Reserving all of one product's stock takes it out; releasing the reservation puts it back.
    const reserve = await send(t.app, 'POST', '/api/v1/inventory/reserve', shop.staff, {
      key: 'search-test-cart',
      lines: [{ variantId: variants[0]!, quantity: 2 }],
    });
    expect(reserve.statusCode).toBeLessThan(300);
    await until(async () => !(await inStockIds()).has(stocked[0]!), 'reserved product out of stock');
    const release = await send(t.app, 'POST', '/api/v1/inventory/release', shop.staff, {
      key: 'search-test-cart',
    });
    expect(release.statusCode).toBeLessThan(300);
    await until(async () => (await inStockIds()).has(stocked[0]!), 'released product back in stock');

    // One unit of two reserved leaves it in stock: that change is skipped as it is published (the
    // catalog never gets it); the next takes the last unit, is delivered and takes it out.
    const reserveOne = (key: string) =>
      send(t.app, 'POST', '/api/v1/inventory/reserve', shop.staff, {
        key,
        lines: [{ variantId: variants[0]!, quantity: 1 }],
      });
    expect((await reserveOne('search-test-first')).statusCode).toBeLessThan(300);
    const { rows } = await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
      sql<{ state: string; attempts: number }>`
        select m.state, (select count(*)::int from wal.attempts a where a.message_pk = m.id) as attempts
        from wal.messages m where m.ordering_key = ${itemIds[0]!} and m.payload->>'available' = '1'
          and m.headers->>'ce-type' = 'mercato.inventory.stock-changed'`.execute(trx),
    );
    expect(rows).toEqual([{ state: 'delivered', attempts: 0 }]);
    expect((await reserveOne('search-test-last')).statusCode).toBeLessThan(300);
    await until(async () => !(await inStockIds()).has(stocked[0]!), 'its last unit reserved: out of stock');
  }, 180_000);
});

describe('stock events applied as a batch', () => {
  type Snapshot = { available: number; inStock: boolean };
  const snapshotOf = (variantId: string, productId: string) =>
    withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
      const { rows } = await sql<Snapshot>`
        select s.available, d.in_stock as "inStock" from catalog.variant_stock s, catalog.search_documents d
        where s.variant_id = ${variantId} and d.product_id = ${productId}`.execute(trx);
      return rows[0];
    });

  it('end on the newest snapshot of each item whatever their order; an older one after changes nothing', async () => {
    const productId = shop.productIds[12]!;
    const [item] = await itemsOf(productId);
    const res = await send(t.app, 'GET', `/api/v1/inventory/${item!.id}`, shop.staff);
    const { locationId } = res.json<{ locationId: string }>();
    const event = (available: number, at: string): ReceivedEvent => ({
      id: uuidv7(),
      type: 'mercato.inventory.stock-changed',
      source: 'test',
      subject: item!.id,
      time: at,
      tenantid: shop.id,
      data: {
        variantId: item!.variantId,
        locationId,
        productId,
        available,
        allowBackorder: false,
        updatedAt: at,
      },
    });
    const apply = (events: ReceivedEvent[]) =>
      withTenant(t.ctx.db.kysely, shop.id, (trx) => applyInventoryEvents(trx, events));
    // The newest (7 units) arrives between two older ones, in one delivery batch.
    await apply([
      event(0, '2030-01-01T00:00:01.000Z'),
      event(7, '2030-01-01T00:00:03.000Z'),
      event(0, '2030-01-01T00:00:02.000Z'),
    ]);
    expect(await snapshotOf(item!.variantId, productId)).toEqual({ available: 7, inStock: true });
    await apply([event(0, '2030-01-01T00:00:02.500Z')]);
    expect(await snapshotOf(item!.variantId, productId)).toEqual({ available: 7, inStock: true });
    await apply([event(0, '2030-01-01T00:00:04.000Z'), event(0, '2030-01-01T00:00:04.000Z')]);
    expect(await snapshotOf(item!.variantId, productId)).toEqual({ available: 0, inStock: false });
  }, 120_000);
});

describe('search follows catalog changes in their transaction', () => {
  it('a renamed product is found by its new title at once, a deleted one no more', async () => {
    const id = shop.productIds[6]!;
    const current = await send(t.app, 'GET', `/api/v1/products/${id}`, shop.staff);
    const version = current.json<{ version: number }>().version;
    const renamed = await send(
      t.app,
      'PUT',
      `/api/v1/products/${id}`,
      { ...shop.staff, 'if-match': `"${version}"` },
      { title: 'Quokka Explorer Deluxe', status: 'active' },
    );
    expect(renamed.statusCode).toBe(200);
    expect((await list('/api/v1/products?q=quokka')).items.map((i) => i.id)).toEqual([id]);
    const suggested = await send(t.app, 'GET', '/api/v1/products/suggest?q=quok', shop.anonymous);
    expect(suggested.json<{ terms: string[] }>().terms).toContain('quokka');

    const drafted = await send(t.app, 'PUT', `/api/v1/products/${id}`, shop.staff, {
      title: 'Quokka Explorer Deluxe',
      status: 'draft',
    });
    expect(drafted.statusCode).toBe(200);
    expect((await list('/api/v1/products?q=quokka')).items).toEqual([]);
    expect((await list('/api/v1/products?q=quokka', shop.staff)).items.map((i) => i.id)).toEqual([id]);

    expect((await send(t.app, 'DELETE', `/api/v1/products/${id}`, shop.staff)).statusCode).toBe(204);
    expect((await list('/api/v1/products?q=quokka', shop.staff)).items).toEqual([]);
  });

  it('a renamed category finds its products under the new name', async () => {
    const shoes = shop.categoryIds.get('shoes')!;
    const res = await send(t.app, 'PUT', `/api/v1/categories/${shoes}`, shop.staff, {
      name: 'Trainers',
      handle: 'shoes',
      parentId: shop.categoryIds.get('apparel')!,
    });
    expect(res.statusCode).toBe(200);
    const found = await list('/api/v1/products?q=trainers&limit=100');
    const expected = CATALOG.flatMap((p, i) =>
      p.categoryHandles[0] === 'shoes' ? [shop.productIds[i]!] : [],
    );
    expect(new Set(found.items.map((i) => i.id))).toEqual(new Set(expected));
  });
});

describe('text searches within a category', () => {
  it('follow a product into another category and a category under another parent; naming a category in text puts no product in it', async () => {
    const category = (handle: string) => shop.categoryIds.get(handle)!;
    const within = async (handle: string) =>
      (await list(`/api/v1/products?q=wombat&category=${handle}&limit=100`)).items.map((i) => i.id);
    const created = await send(t.app, 'POST', '/api/v1/products', shop.staff, {
      title: 'Wombat Ridge Kettle',
      status: 'active',
      categoryIds: [category('kitchen')],
      variants: [{ sku: 'WOMBAT-1', prices: { EUR: 4500 } }],
    });
    expect(created.statusCode).toBe(201);
    const id = created.json<{ id: string }>().id;
    // A product of no category whose text names the category (its id, its handle).
    const posing = `${category('kitchen')} #c${category('kitchen').replaceAll('-', '')} kitchen`;
    const decoy = await send(t.app, 'POST', '/api/v1/products', shop.staff, {
      title: `Wombat Decoy ${posing}`,
      description: `${posing} ${posing.slice(1)}`,
      status: 'active',
      variants: [{ sku: 'WOMBAT-2', prices: { EUR: 4500 } }],
    });
    expect(decoy.statusCode).toBe(201);
    expect(await within('kitchen')).toEqual([id]);
    expect(await within('home')).toEqual([id]);
    expect(await within('books')).toEqual([]);

    const moved = await send(t.app, 'PUT', `/api/v1/products/${id}`, shop.staff, {
      title: 'Wombat Ridge Kettle',
      status: 'active',
      categoryIds: [category('books')],
    });
    expect(moved.statusCode).toBe(200);
    expect(await within('books')).toEqual([id]);
    expect(await within('kitchen')).toEqual([]);
    expect(await within('home')).toEqual([]);

    const reparented = await send(t.app, 'PUT', `/api/v1/categories/${category('books')}`, shop.staff, {
      name: 'Books',
      handle: 'books',
      parentId: category('home'),
    });
    expect(reparented.statusCode).toBe(200);
    expect(await within('home')).toEqual([id]);
    expect((await list('/api/v1/products?q=wombat&limit=100')).items).toHaveLength(2);
  });
});

describe('concurrent writers', () => {
  it('products written at once with the same new words all index, and each word is suggested once', async () => {
    const writes = Array.from({ length: 12 }, (_, n) =>
      send(t.app, 'POST', '/api/v1/products', shop.staff, {
        title: `Zebrawood Quasar Lamp ${n}`,
        status: 'active',
        tags: ['zebrawood', 'lighting'],
        variants: [{ sku: `ZQ-${n}`, prices: { EUR: 1000 + n } }],
      }),
    );
    const answers = await Promise.all(writes);
    expect(answers.map((a) => a.statusCode)).toEqual(answers.map(() => 201));
    const found = await list('/api/v1/products?q=quasar&limit=100');
    expect(new Set(found.items.map((i) => i.id))).toEqual(
      new Set(answers.map((a) => a.json<{ id: string }>().id)),
    );
    const suggested = await send(t.app, 'GET', '/api/v1/products/suggest?q=zebraw', shop.anonymous);
    expect(suggested.json<{ terms: string[] }>().terms).toEqual(['zebrawood']);
  });
});
