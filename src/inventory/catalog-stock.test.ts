import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCatalog, type Product } from '../catalog/index.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import { startTestApp, type TestApp } from '../platform/testing/index.ts';
import { createWal } from '../wal/index.ts';
import { createInventory } from './index.ts';
import { createShop, type Shop, until } from './inventory-test-fixtures.ts';
import type { InventoryItem } from './views.ts';

// The catalog, the WAL and the inventory composed as server.ts composes them: products made
// through the catalog's API get their stock rows through product-events.
let t: TestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startTestApp(
    {},
    {
      modules: async (ctx, identity) => {
        const wal = await createWal(ctx);
        const base = { events: wal.events, resolveTenant: identity.resolveTenant };
        const catalog = await createCatalog(ctx, base);
        return [wal, catalog, await createInventory(ctx, { ...base, productStatus: catalog.productStatus })];
      },
    },
  );
  shop = await createShop(t, 'catalog-stock');
});
afterAll(async () => {
  await t.close();
});

describe('stock for catalog products', () => {
  it('gives each variant of a product made through the catalog a zero-stock item', async () => {
    const created = await send(t.app, 'POST', '/api/v1/products', shop.staff, {
      title: 'Canvas Tote',
      status: 'active',
      variants: [
        { sku: 'TOTE-NAT', options: { colour: 'natural' }, prices: { USD: 2500 } },
        { sku: 'TOTE-BLK', options: { colour: 'black' }, prices: { USD: 2500 } },
      ],
    });
    expect(created.statusCode, created.body).toBe(201);
    const product = created.json<Product>();
    const stockOf = async () =>
      (await send(t.app, 'GET', `/api/v1/inventory?productId=${product.id}`, shop.staff)).json<{
        items: InventoryItem[];
      }>().items;
    await until(async () => (await stockOf()).length === 2, 'stock rows for both variants');
    const items = await stockOf();
    expect(items.map((i) => i.variantId).sort()).toEqual(product.variants.map((v) => v.id).sort());
    expect(items.map((i) => i.sku).sort()).toEqual(['TOTE-BLK', 'TOTE-NAT']);
    expect(items.every((i) => i.onHand === 0 && i.available === 0)).toBe(true);

    const shopper = await t.app.inject({
      method: 'GET',
      url: `/api/v1/inventory/products/${product.id}`,
      headers: { 'x-tenant': shop.slug },
    });
    expect(shopper.json()).toMatchObject({ productId: product.id, available: 0, inStock: false });
  });

  it("answers a shopper the stock of active products only, as the catalog shows them (staff see every product's)", async () => {
    const created = await send(t.app, 'POST', '/api/v1/products', shop.staff, {
      title: 'Unreleased Tote',
      status: 'draft',
      variants: [{ sku: 'TOTE-NEW', options: { colour: 'red' }, prices: { USD: 2500 } }],
    });
    expect(created.statusCode, created.body).toBe(201);
    const product = created.json<Product>();
    const url = `/api/v1/inventory/products/${product.id}`;
    const staffRead = () => send(t.app, 'GET', url, shop.staff);
    await until(async () => (await staffRead()).statusCode === 200, 'the stock row of the draft');
    const shopperRead = () => t.app.inject({ method: 'GET', url, headers: { 'x-tenant': shop.slug } });
    const hidden = await shopperRead();
    expect(hidden.statusCode).toBe(404);
    expect(hidden.json()).toMatchObject({ code: 'NOT_FOUND' });
    const setStatus = async (status: string) => {
      const response = await send(t.app, 'PUT', `/api/v1/products/${product.id}`, shop.staff, {
        title: 'Unreleased Tote',
        status,
      });
      expect(response.statusCode, response.body).toBe(200);
    };
    await setStatus('active');
    expect((await shopperRead()).json()).toMatchObject({ productId: product.id, available: 0 });
    await setStatus('archived');
    expect((await shopperRead()).statusCode).toBe(404);
    expect((await staffRead()).statusCode).toBe(200);
  });
});
