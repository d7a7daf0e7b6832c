import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CatalogTestApp,
  createProduct,
  createShop,
  productBody,
  productEvents,
  type Shop,
  send,
  startCatalogApp,
} from './catalog-test-fixtures.ts';
import type { Product } from './products/product-read.ts';

let t: CatalogTestApp;
let shop: Shop;
let other: Shop;

beforeAll(async () => {
  t = await startCatalogApp();
  shop = await createShop(t, 'events');
  other = await createShop(t, 'quiet');
});
afterAll(() => t.close());

const eventsOf = async (subject: string) =>
  (await productEvents(t, shop.id)).filter((e) => e.subject === subject);

describe('catalog events', () => {
  it('publishes mercato.product.created, updated and deleted with the product as GET answers it', async () => {
    const created = await createProduct(t, shop);
    const put = await send(t.app, 'PUT', `/api/v1/products/${created.id}`, shop.staff, {
      title: 'Renamed',
      status: 'active',
    });
    const updated = put.json<Product>();
    const variant = await send(t.app, 'POST', `/api/v1/products/${created.id}/variants`, shop.staff, {
      sku: `${created.handle}-S`,
      options: { size: 'S' },
      prices: { USD: 100 },
    });
    expect(variant.statusCode).toBe(201);
    const withVariant = (
      await send(t.app, 'GET', `/api/v1/products/${created.id}`, shop.staff)
    ).json<Product>();
    await send(t.app, 'DELETE', `/api/v1/products/${created.id}`, shop.staff);
    const events = await eventsOf(created.id);
    expect(events.map((e) => e.type)).toEqual([
      'mercato.product.created',
      'mercato.product.updated',
      'mercato.product.updated',
      'mercato.product.deleted',
    ]);
    expect(events[0]!.data).toEqual(created);
    expect(events[1]!.data).toEqual(updated);
    expect(events[2]!.data).toEqual(withVariant);
    expect(events[3]!.data).toEqual(withVariant);
    expect((events[2]!.data as Product).variants).toHaveLength(3);
  });

  it('publishes nothing for a write that fails, nor for an unchanged batch row', async () => {
    const product = await createProduct(t, shop);
    const before = (await productEvents(t, shop.id)).length;
    const taken = await send(
      t.app,
      'POST',
      '/api/v1/products',
      shop.staff,
      productBody({ handle: product.handle }),
    );
    expect(taken.statusCode).toBe(409);
    const stale = await send(
      t.app,
      'PUT',
      `/api/v1/products/${product.id}`,
      { ...shop.staff, 'if-match': '7' },
      { title: 'x' },
    );
    expect(stale.statusCode).toBe(412);
    const same = await send(t.app, 'POST', '/api/v1/products/batch', shop.staff, {
      products: [
        {
          handle: product.handle,
          title: product.title,
          status: product.status,
          variants: product.variants.map((v) => ({ sku: v.sku, options: v.options, prices: v.prices })),
        },
      ],
    });
    expect(same.json().results[0].status).toBe('unchanged');
    expect(await productEvents(t, shop.id)).toHaveLength(before);
  });

  it('publishes mercato.category.created, updated and deleted with the category and its path', async () => {
    const parent = await send(t.app, 'POST', '/api/v1/categories', shop.staff, { name: 'Bags' });
    const child = await send(t.app, 'POST', '/api/v1/categories', shop.staff, {
      name: 'Totes',
      parentId: parent.json().id,
    });
    const renamed = await send(t.app, 'PUT', `/api/v1/categories/${child.json().id}`, shop.staff, {
      name: 'Tote Bags',
      parentId: parent.json().id,
    });
    await send(t.app, 'DELETE', `/api/v1/categories/${child.json().id}`, shop.staff);
    const events = await eventsOf(child.json().id);
    expect(events.map((e) => e.type)).toEqual([
      'mercato.category.created',
      'mercato.category.updated',
      'mercato.category.deleted',
    ]);
    expect(events[0]!.data).toEqual(child.json());
    expect(events[1]!.data).toEqual(renamed.json());
    expect(events[1]!.data['path']).toEqual([
      { id: parent.json().id, name: 'Bags', handle: 'bags' },
      { id: child.json().id, name: 'Tote Bags', handle: 'totes' },
    ]);
  });

  it("writes each tenant's events to its own namespace only", async () => {
    const product = await createProduct(t, shop);
    expect((await productEvents(t, other.id)).some((e) => e.subject === product.id)).toBe(false);
    const theirs = await createProduct(t, other);
    expect((await productEvents(t, other.id)).map((e) => e.subject)).toContain(theirs.id);
    expect((await productEvents(t, shop.id)).some((e) => e.subject === theirs.id)).toBe(false);
  });
});
