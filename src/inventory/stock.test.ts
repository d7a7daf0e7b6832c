import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, bearer, send } from '../identity/users/user-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  createShop,
  createStock,
  type InventoryTestApp,
  inventoryEvents,
  type Shop,
  startInventoryApp,
  until,
} from './inventory-test-fixtures.ts';
import { MAX_LOCATIONS } from './location-store.ts';
import type { InventoryItem, Location } from './views.ts';

let t: InventoryTestApp;
let shop: Shop;
let other: Shop;

beforeAll(async () => {
  t = await startInventoryApp();
  shop = await createShop(t, 'stock-a');
  other = await createShop(t, 'stock-b');
});
afterAll(async () => {
  await t.close();
});

describe('stock items', () => {
  it('creates stock at the default location, created lazily, with a receive in the ledger and an event', async () => {
    const variantId = uuidv7();
    const productId = uuidv7();
    const created = await send(t.app, 'POST', '/api/v1/inventory', shop.staff, {
      variantId,
      productId,
      sku: 'TEE-M',
      onHand: 12,
      lowStockThreshold: 2,
    });
    expect(created.statusCode).toBe(201);
    const item = created.json<InventoryItem>();
    expect(item).toMatchObject({
      variantId,
      productId,
      sku: 'TEE-M',
      onHand: 12,
      reserved: 0,
      available: 12,
    });
    const locations = await send(t.app, 'GET', '/api/v1/inventory/locations', shop.staff);
    const [first] = locations.json<{ items: Location[] }>().items;
    expect(first).toMatchObject({ id: item.locationId, isDefault: true });
    const ledger = await send(t.app, 'GET', `/api/v1/inventory/${item.id}/ledger`, shop.staff);
    expect(ledger.json().items).toMatchObject([{ kind: 'receive', quantity: 12, onHandAfter: 12 }]);
    expect(await inventoryEvents(t, shop.id, 'mercato.inventory.created')).toContainEqual(
      expect.objectContaining({
        subject: item.id,
        data: expect.objectContaining({ variantId, available: 12 }),
      }),
    );
    const again = await send(t.app, 'POST', '/api/v1/inventory', shop.staff, { variantId, onHand: 1 });
    expect(again.statusCode).toBe(409);
  });

  it('sets and adjusts on hand with a reason, never below what is reserved', async () => {
    const item = await createStock(t, shop, { onHand: 5 });
    const put = (body: unknown) => send(t.app, 'PUT', `/api/v1/inventory/${item.id}/stock`, shop.staff, body);
    expect((await put({ set: 9, reason: 'count' })).json()).toMatchObject({ onHand: 9 });
    expect((await put({ adjust: -4, reason: 'damaged' })).json()).toMatchObject({ onHand: 5 });
    expect((await put({ adjust: 2, kind: 'return', reason: 'customer return' })).json()).toMatchObject({
      onHand: 7,
    });
    await t.inventory.reserve(shop.id, {
      key: `hold-${item.id}`,
      lines: [{ variantId: item.variantId, quantity: 6 }],
      actor: 'test',
    });
    const below = await put({ set: 5, reason: 'count' });
    expect(below.statusCode).toBe(409);
    const ledger = await send(t.app, 'GET', `/api/v1/inventory/${item.id}/ledger?limit=2`, shop.staff);
    const page = ledger.json<{ items: { kind: string }[]; nextCursor: string }>();
    expect(page.items.map((e) => e.kind)).toEqual(['receive', 'adjust']);
    const next = await send(
      t.app,
      'GET',
      `/api/v1/inventory/${item.id}/ledger?limit=10&cursor=${page.nextCursor}`,
      shop.staff,
    );
    expect(next.json().items.map((e: { kind: string }) => e.kind)).toEqual(['adjust', 'return', 'reserve']);
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });

  it('lists with filters and cursor pages, and low stock', async () => {
    const productId = uuidv7();
    const a = await createStock(t, shop, { onHand: 1, productId, lowStockThreshold: 5 });
    const b = await createStock(t, shop, { onHand: 50, productId, lowStockThreshold: 5 });
    const page1 = await send(t.app, 'GET', `/api/v1/inventory?productId=${productId}&limit=1`, shop.staff);
    const body1 = page1.json<{ items: InventoryItem[]; nextCursor: string }>();
    expect(body1.items.map((i) => i.id)).toEqual([a.id]);
    const page2 = await send(
      t.app,
      'GET',
      `/api/v1/inventory?productId=${productId}&limit=1&cursor=${body1.nextCursor}`,
      shop.staff,
    );
    expect(page2.json()).toMatchObject({ items: [{ id: b.id }], nextCursor: null });
    const low = await send(t.app, 'GET', '/api/v1/inventory/low-stock?limit=100', shop.staff);
    const lowIds = low.json<{ items: InventoryItem[] }>().items.map((i) => i.id);
    expect(lowIds).toContain(a.id);
    expect(lowIds).not.toContain(b.id);
    const bySku = await send(t.app, 'GET', `/api/v1/inventory?variantId=${b.variantId}`, shop.staff);
    expect(bySku.json().items).toHaveLength(1);
  });

  it('shows shoppers the availability of a product per variant (X-Tenant)', async () => {
    const productId = uuidv7();
    const a = await createStock(t, shop, { onHand: 3, productId });
    await createStock(t, shop, { onHand: 0, productId });
    const answer = await t.app.inject({
      method: 'GET',
      url: `/api/v1/inventory/products/${productId}`,
      headers: { 'x-tenant': shop.slug },
    });
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toMatchObject({ productId, available: 3, inStock: true });
    expect(answer.json().variants).toContainEqual(
      expect.objectContaining({ variantId: a.variantId, available: 3, inStock: true }),
    );
    // another store knows nothing of it
    const elsewhere = await t.app.inject({
      method: 'GET',
      url: `/api/v1/inventory/products/${productId}`,
      headers: { 'x-tenant': other.slug },
    });
    expect(elsewhere.statusCode).toBe(404);
    // everything else is staff only
    const anonymous = await t.app.inject({
      method: 'GET',
      url: '/api/v1/inventory',
      headers: { 'x-tenant': shop.slug },
    });
    expect(anonymous.statusCode).toBe(401);
    await addUser(t, shop.id, 'shopper@stock-a.test', 'customer');
    const customer = await bearer(t, shop.slug, 'shopper@stock-a.test');
    expect((await send(t.app, 'GET', `/api/v1/inventory/${a.id}`, customer)).statusCode).toBe(403);
    expect(
      (
        await send(t.app, 'POST', '/api/v1/inventory/reserve', customer, {
          key: 'k',
          lines: [{ variantId: a.variantId, quantity: 1 }],
        })
      ).statusCode,
    ).toBe(403);
  });

  it('holds the invariants as CHECK constraints, even for direct SQL', async () => {
    const item = await createStock(t, shop, { onHand: 2 });
    const run = (statement: ReturnType<typeof sql>) =>
      withTenant(t.ctx.db.kysely, shop.id, (trx) => statement.execute(trx));
    await expect(
      run(sql`update inventory.items set reserved = 3 where id = ${item.id}`),
    ).rejects.toMatchObject({
      code: '23514',
    });
    await expect(
      run(sql`update inventory.items set reserved = -1 where id = ${item.id}`),
    ).rejects.toMatchObject({
      code: '23514',
    });
    await expect(
      run(sql`update inventory.items set on_hand = -1 where id = ${item.id}`),
    ).rejects.toMatchObject({
      code: '23514',
    });
    await expect(run(sql`update inventory.items set available = 5 where id = ${item.id}`)).rejects.toThrow();
  });
});

describe('locations', () => {
  it('creates, renames, moves the default, and refuses to delete one holding stock or the default', async () => {
    const made = await send(t.app, 'POST', '/api/v1/inventory/locations', shop.staff, {
      name: 'Warehouse',
      code: 'WH-1',
    });
    expect(made.statusCode).toBe(201);
    const location = made.json<Location>();
    const dup = await send(t.app, 'POST', '/api/v1/inventory/locations', shop.staff, {
      name: 'Other',
      code: 'WH-1',
    });
    expect(dup.statusCode).toBe(409);
    const item = await createStock(t, shop, { onHand: 4, locationId: location.id });
    expect(item.locationId).toBe(location.id);
    const busy = await send(t.app, 'DELETE', `/api/v1/inventory/locations/${location.id}`, shop.staff);
    expect(busy.statusCode).toBe(409);
    expect(busy.json().code).toBe('LOCATION_IN_USE');
    await send(t.app, 'PUT', `/api/v1/inventory/${item.id}/stock`, shop.staff, {
      set: 0,
      reason: 'moved out',
    });
    const renamed = await send(t.app, 'PUT', `/api/v1/inventory/locations/${location.id}`, shop.staff, {
      name: 'Main warehouse',
      isDefault: true,
    });
    expect(renamed.json()).toMatchObject({ name: 'Main warehouse', isDefault: true });
    const asDefault = await send(t.app, 'DELETE', `/api/v1/inventory/locations/${location.id}`, shop.staff);
    expect(asDefault.json().code).toBe('LOCATION_IN_USE');
    const list = (await send(t.app, 'GET', '/api/v1/inventory/locations', shop.staff)).json<{
      items: Location[];
    }>();
    const previous = list.items.find((l) => !l.isDefault && l.name === 'Default location')!;
    await send(t.app, 'PUT', `/api/v1/inventory/locations/${previous.id}`, shop.staff, { isDefault: true });
    const deleted = await send(t.app, 'DELETE', `/api/v1/inventory/locations/${location.id}`, shop.staff);
    expect(deleted.statusCode).toBe(204);
    expect((await send(t.app, 'GET', `/api/v1/inventory/${item.id}`, shop.staff)).statusCode).toBe(404);
  });
});

describe('locations changed at once (meaningful on PostgreSQL, where requests run concurrently)', () => {
  it('makes each of several locations the default in turn, where all but one answered 409 "location code undefined is already used"', async () => {
    const moving = await createShop(t, 'stock-defaults');
    const locations = (url: string, body: Record<string, unknown>, method: 'POST' | 'PUT' = 'POST') =>
      send(t.app, method, `/api/v1/inventory/locations${url}`, moving.staff, body);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await locations('', { name: `Store ${i}` })).json<Location>().id);
    const moved = await Promise.all(ids.map((id) => locations(`/${id}`, { isDefault: true }, 'PUT')));
    expect(moved.map((a) => a.statusCode)).toEqual(Array(6).fill(200));
    const created = await Promise.all(
      Array.from({ length: 6 }, (_, i) => locations('', { name: `New default ${i}`, isDefault: true })),
    );
    expect(created.map((a) => a.statusCode)).toEqual(Array(6).fill(201));
    const list = (await send(t.app, 'GET', '/api/v1/inventory/locations', moving.staff)).json<{
      items: Location[];
    }>();
    expect(list.items.filter((l) => l.isDefault)).toHaveLength(1);
  });

  it('never lets locations created at once pass the 200 a tenant may have', async () => {
    const full = await createShop(t, 'stock-many-places');
    // The default and all but two of the others, written directly: only the last two may be created.
    await withTenant(t.ctx.db.kysely, full.id, async (trx) => {
      await sql`insert into inventory.locations (id, tenant_id, name, is_default)
        select gen_random_uuid(), ${full.id}, 'Store ' || n, n = 0
        from generate_series(0, ${MAX_LOCATIONS - 3}) n`.execute(trx);
    });
    const created = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        send(t.app, 'POST', '/api/v1/inventory/locations', full.staff, { name: `Late ${i}` }),
      ),
    );
    expect(created.map((r) => r.statusCode).sort()).toEqual([201, 201, 409, 409, 409, 409, 409, 409]);
    const list = await send(t.app, 'GET', '/api/v1/inventory/locations', full.staff);
    expect(list.json<{ items: Location[] }>().items).toHaveLength(MAX_LOCATIONS);
  });

  it('answers a location deleted while an item is put there with 204 and 409 LOCATION_IN_USE, or 404 and 204, never a 500', async () => {
    for (let round = 0; round < 6; round++) {
      const made = await send(t.app, 'POST', '/api/v1/inventory/locations', shop.staff, {
        name: `Pop-up ${round}`,
      });
      const id = made.json<Location>().id;
      const [deleted, stocked] = await Promise.all([
        send(t.app, 'DELETE', `/api/v1/inventory/locations/${id}`, shop.staff),
        send(t.app, 'POST', '/api/v1/inventory', shop.staff, {
          variantId: uuidv7(),
          onHand: 3,
          locationId: id,
        }),
      ]);
      const answer = `${deleted.statusCode}/${stocked.statusCode}`;
      expect(['204/404', '409/201'], `${answer} ${deleted.body} ${stocked.body}`).toContain(answer);
      if (stocked.statusCode === 201) {
        expect(deleted.json().code).toBe('LOCATION_IN_USE');
        expect(stocked.json<InventoryItem>().locationId).toBe(id);
      }
    }
  });
});

describe('several locations', () => {
  it('takes a line from the default location first, then from others, and gives it back there', async () => {
    const variantId = uuidv7();
    const warehouse = (
      await send(t.app, 'POST', '/api/v1/inventory/locations', shop.staff, { name: 'Overflow' })
    ).json<Location>();
    const atDefault = await createStock(t, shop, { variantId, onHand: 2 });
    const atWarehouse = await createStock(t, shop, { variantId, onHand: 3, locationId: warehouse.id });
    const key = `split-${uuidv7()}`;
    const made = await send(t.app, 'POST', '/api/v1/inventory/reserve', shop.staff, {
      key,
      lines: [{ variantId, quantity: 4 }],
    });
    expect(made.statusCode).toBe(201);
    expect(made.json().lines).toEqual(
      expect.arrayContaining([
        { variantId, locationId: atDefault.locationId, quantity: 2 },
        { variantId, locationId: warehouse.id, quantity: 2 },
      ]),
    );
    const availability = await t.inventory.availability(shop.id, [variantId]);
    expect(availability.get(variantId)).toMatchObject({ onHand: 5, reserved: 4, available: 1 });
    await send(t.app, 'POST', '/api/v1/inventory/release', shop.staff, { key });
    for (const item of [atDefault, atWarehouse]) {
      const now = (
        await send(t.app, 'GET', `/api/v1/inventory/${item.id}`, shop.staff)
      ).json<InventoryItem>();
      expect(now.reserved).toBe(0);
    }
  });

  it('replays a POST with the same Idempotency-Key', async () => {
    const body = { variantId: uuidv7(), onHand: 3 };
    const headers = { ...shop.staff, 'idempotency-key': `create-${body.variantId}` };
    const first = await send(t.app, 'POST', '/api/v1/inventory', headers, body);
    const again = await send(t.app, 'POST', '/api/v1/inventory', headers, body);
    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(first.json().id);
  });
});

describe('product events', () => {
  it('gives every new variant zero stock at the default location and keeps its SKU current', async () => {
    const productId = uuidv7();
    const variants = [
      { id: uuidv7(), productId, sku: 'MUG-RED' },
      { id: uuidv7(), productId, sku: 'MUG-BLUE' },
    ];
    const announce = (type: string, list: typeof variants) =>
      withTenant(t.ctx.db.kysely, shop.id, (trx) =>
        t.wal.events.publish(trx, shop.id, 'product-events', [
          { type, subject: productId, data: { id: productId, title: 'Mug', variants: list } },
        ]),
      );
    await announce('mercato.product.created', variants);
    const stockOf = async () =>
      (await send(t.app, 'GET', `/api/v1/inventory?productId=${productId}`, shop.staff)).json<{
        items: InventoryItem[];
      }>().items;
    await until(async () => (await stockOf()).length === 2, 'items for the new variants');
    expect((await stockOf()).map((i) => [i.sku, i.onHand])).toEqual(
      expect.arrayContaining([
        ['MUG-RED', 0],
        ['MUG-BLUE', 0],
      ]),
    );
    await announce('mercato.product.updated', [{ ...variants[0]!, sku: 'MUG-CRIMSON' }, variants[1]!]);
    await until(async () => (await stockOf()).some((i) => i.sku === 'MUG-CRIMSON'), 'the SKU renamed');
    expect(await stockOf()).toHaveLength(2);
  });
});

describe('tenant isolation', () => {
  it("answers 404 for another tenant's items, ledgers, locations and reservations", async () => {
    const item = await createStock(t, shop, { onHand: 3 });
    const key = `iso-${uuidv7()}`;
    await t.inventory.reserve(shop.id, {
      key,
      lines: [{ variantId: item.variantId, quantity: 1 }],
      actor: 'test',
    });
    const b = other.staff;
    expect((await send(t.app, 'GET', `/api/v1/inventory/${item.id}`, b)).statusCode).toBe(404);
    expect((await send(t.app, 'GET', `/api/v1/inventory/${item.id}/ledger`, b)).statusCode).toBe(404);
    expect(
      (await send(t.app, 'PUT', `/api/v1/inventory/${item.id}/stock`, b, { set: 0, reason: 'x' })).statusCode,
    ).toBe(404);
    expect(
      (await send(t.app, 'PUT', `/api/v1/inventory/${item.id}`, b, { lowStockThreshold: 1 })).statusCode,
    ).toBe(404);
    expect((await send(t.app, 'GET', `/api/v1/inventory/locations/${item.locationId}`, b)).statusCode).toBe(
      404,
    );
    expect(
      (await send(t.app, 'PUT', `/api/v1/inventory/locations/${item.locationId}`, b, { name: 'mine' }))
        .statusCode,
    ).toBe(404);
    expect(
      (await send(t.app, 'DELETE', `/api/v1/inventory/locations/${item.locationId}`, b)).statusCode,
    ).toBe(404);
    expect((await send(t.app, 'GET', `/api/v1/inventory/reservations/${key}`, b)).statusCode).toBe(404);
    for (const path of ['release', 'commit', 'extend']) {
      expect((await send(t.app, 'POST', `/api/v1/inventory/${path}`, b, { key })).statusCode).toBe(404);
    }
    // B reserving A's variant finds no stock of it
    const reserve = await send(t.app, 'POST', '/api/v1/inventory/reserve', b, {
      key,
      lines: [{ variantId: item.variantId, quantity: 1 }],
    });
    expect(reserve.statusCode).toBe(409);
    expect(reserve.json()).toMatchObject({ code: 'INSUFFICIENT_STOCK', lines: [{ available: 0 }] });
    const listed = await send(t.app, 'GET', `/api/v1/inventory?variantId=${item.variantId}`, b);
    expect(listed.json().items).toEqual([]);
    expect((await send(t.app, 'GET', `/api/v1/inventory/${item.id}`, shop.staff)).json()).toMatchObject({
      reserved: 1,
    });
  });
});

describe('bad input', () => {
  it('lists the failing fields', async () => {
    const cases: [string, string, unknown, string][] = [
      ['POST', '/api/v1/inventory', { variantId: 'nope', onHand: 1 }, '/variantId'],
      ['POST', '/api/v1/inventory', { variantId: uuidv7(), onHand: -1 }, '/onHand'],
      ['POST', '/api/v1/inventory', { variantId: uuidv7(), onHand: 1, extra: true }, ''],
      ['POST', '/api/v1/inventory/reserve', { key: 'k', lines: [] }, '/lines'],
      [
        'POST',
        '/api/v1/inventory/reserve',
        { key: 'k', lines: [{ variantId: uuidv7(), quantity: 0 }] },
        '/lines/0/quantity',
      ],
      [
        'POST',
        '/api/v1/inventory/reserve',
        { key: 'a b', lines: [{ variantId: uuidv7(), quantity: 1 }] },
        '/key',
      ],
      [
        'POST',
        '/api/v1/inventory/reserve',
        { key: 'k'.repeat(201), lines: [{ variantId: uuidv7(), quantity: 1 }] },
        '/key',
      ],
      ['POST', '/api/v1/inventory/extend', { key: 'k', ttlSeconds: 0 }, '/ttlSeconds'],
      ['POST', '/api/v1/inventory/locations', { name: '' }, '/name'],
      ['PUT', `/api/v1/inventory/${uuidv7()}/stock`, { set: 1 }, ''],
      ['PUT', `/api/v1/inventory/${uuidv7()}/stock`, { set: 1, adjust: 2, reason: 'r' }, '/adjust'],
    ];
    for (const [method, url, body, pointer] of cases) {
      const answer = await send(t.app, method as 'POST', url, shop.staff, body);
      expect(answer.statusCode, `${method} ${url} ${JSON.stringify(body)}`).toBe(400);
      const problem = answer.json();
      expect(problem.code).toBe('VALIDATION_FAILED');
      if (pointer) expect(problem.errors.map((e: { pointer: string }) => e.pointer)).toContain(pointer);
    }
    expect((await send(t.app, 'GET', '/api/v1/inventory/not-a-uuid', shop.staff)).statusCode).toBe(400);
    expect((await send(t.app, 'GET', '/api/v1/inventory?cursor=zzz', shop.staff)).json().code).toBe(
      'INVALID_CURSOR',
    );
    const missing = await send(t.app, 'POST', '/api/v1/inventory/release', shop.staff, { key: 'never-made' });
    expect(missing.statusCode).toBe(404);
  });
});
