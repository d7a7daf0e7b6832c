import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../identity/users/user-test-fixtures.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  createShop,
  createStock,
  type InventoryTestApp,
  type Shop,
  startInventoryApp,
} from './inventory-test-fixtures.ts';

let t: InventoryTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startInventoryApp();
  shop = await createShop(t, 'module-reservations');
});
afterAll(async () => {
  await t.close();
});

describe('reservations other modules hold', () => {
  it('are read but not changed over HTTP: a flash sale’s pool and an order’s units stay held (the pool was released, the order committed)', async () => {
    const stock = await createStock(t, shop, { onHand: 10 });
    const lines = [{ variantId: stock.variantId, quantity: 3 }];
    const pool = `flash-sale:${uuidv7()}`;
    const order = `order-${uuidv7()}`;
    await t.inventory.reserve(shop.id, { key: pool, lines, ttlSeconds: 3600, actor: 'flash-sales' });
    await t.inventory.reserve(shop.id, { key: order, lines, actor: 'checkout' });

    for (const [path, key] of [
      ['release', pool],
      ['commit', pool],
      ['extend', pool],
      ['release', order],
      ['commit', order],
      ['return', order],
      ['reserve', `${pool}:refund:${uuidv7()}`],
    ] as const) {
      const body = path === 'reserve' ? { key, lines } : { key };
      const answer = await send(t.app, 'POST', `/api/v1/inventory/${path}`, shop.staff, body);
      expect([path, key, answer.statusCode, answer.json().code]).toEqual([path, key, 403, 'FORBIDDEN']);
    }
    for (const key of [pool, order]) {
      const read = await send(t.app, 'GET', `/api/v1/inventory/reservations/${key}`, shop.staff);
      expect(read.json()).toMatchObject({ key, status: 'active' });
    }
    expect((await send(t.app, 'GET', `/api/v1/inventory/${stock.id}`, shop.staff)).json()).toMatchObject({
      onHand: 10,
      reserved: 6,
    });
    // A key of the shop's own that merely starts alike is the shop's.
    const own = await send(t.app, 'POST', '/api/v1/inventory/reserve', shop.staff, {
      key: 'order-1234',
      lines: [{ variantId: stock.variantId, quantity: 1 }],
    });
    expect(own.statusCode).toBe(201);
    // The module's own calls (in process) still change them.
    expect((await t.inventory.release(shop.id, pool, 'flash-sales')).status).toBe('released');
  });
});
