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
import type { Location } from './views.ts';

let t: InventoryTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startInventoryApp();
  shop = await createShop(t, 'location-history');
});
afterAll(async () => {
  await t.close();
});

describe('a location whose stock was sold', () => {
  it('is in use while a committed reservation may still return units there (its delete was 204, the return then a 500 and the sale’s ledger gone)', async () => {
    const warehouse = (
      await send(t.app, 'POST', '/api/v1/inventory/locations', shop.staff, { name: 'Pop-up store' })
    ).json<Location>();
    const variantId = uuidv7();
    const item = await createStock(t, shop, { variantId, onHand: 2, locationId: warehouse.id });
    const key = `checkout-${uuidv7()}`;
    const reserved = await send(t.app, 'POST', '/api/v1/inventory/reserve', shop.staff, {
      key,
      lines: [{ variantId, quantity: 2 }],
    });
    expect(reserved.statusCode).toBe(201);
    expect((await send(t.app, 'POST', '/api/v1/inventory/commit', shop.staff, { key })).json().status).toBe(
      'committed',
    );

    // Sold out there: on hand and reserved are 0, but the sale can still come back.
    const deleted = await send(t.app, 'DELETE', `/api/v1/inventory/locations/${warehouse.id}`, shop.staff);
    expect(deleted.statusCode).toBe(409);
    expect(deleted.json()).toMatchObject({ code: 'LOCATION_IN_USE', committedReservations: 1 });

    const returned = await send(t.app, 'POST', '/api/v1/inventory/return', shop.staff, { key });
    expect(returned.statusCode).toBe(200);
    expect(returned.json().status).toBe('returned');
    const after = (await send(t.app, 'GET', `/api/v1/inventory/${item.id}`, shop.staff)).json();
    expect(after).toMatchObject({ onHand: 2, reserved: 0 });
    const ledger = (await send(t.app, 'GET', `/api/v1/inventory/${item.id}/ledger`, shop.staff)).json<{
      items: { kind: string }[];
    }>();
    expect(ledger.items.map((e) => e.kind)).toEqual(['receive', 'reserve', 'commit', 'return']);
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });

    // Returned and emptied, nothing can come back: the location goes.
    await send(t.app, 'PUT', `/api/v1/inventory/${item.id}/stock`, shop.staff, {
      set: 0,
      reason: 'moved out',
    });
    const gone = await send(t.app, 'DELETE', `/api/v1/inventory/locations/${warehouse.id}`, shop.staff);
    expect(gone.statusCode).toBe(204);
  });
});
