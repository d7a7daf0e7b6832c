import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CatalogTestApp,
  createProduct,
  createShop,
  type Shop,
  send,
  startCatalogApp,
} from '../catalog-test-fixtures.ts';
import type { Product, Variant } from './product-read.ts';

let t: CatalogTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startCatalogApp();
  shop = await createShop(t, 'variants');
});
afterAll(() => t.close());

const product = async (ref: string) =>
  (await send(t.app, 'GET', `/api/v1/products/${ref}`, shop.staff)).json<Product>();

describe('variants', () => {
  it('lists, adds, replaces and deletes variants; each change is a new product version', async () => {
    const p = await createProduct(t, shop);
    const listed = await send(t.app, 'GET', `/api/v1/products/${p.handle}/variants`, shop.anonymous);
    expect(listed.json().items).toEqual(p.variants);
    const added = await send(t.app, 'POST', `/api/v1/products/${p.id}/variants`, shop.staff, {
      sku: `${p.handle}-XL`,
      options: { size: 'XL' },
      prices: { USD: 5900 },
      weightGrams: 300,
    });
    expect(added.statusCode, added.body).toBe(201);
    const xl = added.json<Variant>();
    expect(xl).toMatchObject({ productId: p.id, title: 'XL', position: 2, weightGrams: 300, barcode: null });
    expect(added.headers.location).toBe(`/api/v1/products/${p.id}/variants/${xl.id}`);
    const replaced = await send(t.app, 'PUT', `/api/v1/products/${p.id}/variants/${xl.id}`, shop.staff, {
      sku: `${p.handle}-XXL`,
      title: 'Extra extra large',
      options: { size: 'XXL' },
      prices: { USD: 6900, GBP: 5900 },
    });
    expect(replaced.statusCode, replaced.body).toBe(200);
    expect(replaced.json()).toMatchObject({
      id: xl.id,
      title: 'Extra extra large',
      weightGrams: null,
      position: 2,
    });
    expect((await product(p.id)).version).toBe(3);
    const removed = await send(t.app, 'DELETE', `/api/v1/products/${p.id}/variants/${xl.id}`, shop.staff);
    expect(removed.statusCode).toBe(204);
    const after = await product(p.id);
    expect(after.variants.map((v) => v.id)).toEqual(p.variants.map((v) => v.id));
    expect(after.version).toBe(4);
  });

  it('keeps 1 to 100 variants per product: 409 VARIANT_LIMIT past either end', async () => {
    const p = await createProduct(t, shop, {
      variants: Array.from({ length: 100 }, (_, i) => ({
        sku: `LIM-${i}`,
        options: { n: `${i}` },
        prices: { USD: 1 },
      })),
    });
    const extra = await send(t.app, 'POST', `/api/v1/products/${p.id}/variants`, shop.staff, {
      sku: 'LIM-100',
      options: { n: '100' },
      prices: { USD: 1 },
    });
    expect(extra.statusCode).toBe(409);
    expect(extra.json().code).toBe('VARIANT_LIMIT');
    const single = await createProduct(t, shop, { variants: [{ sku: 'ONLY-ONE', prices: { USD: 1 } }] });
    const last = await send(
      t.app,
      'DELETE',
      `/api/v1/products/${single.id}/variants/${single.variants[0]!.id}`,
      shop.staff,
    );
    expect(last.statusCode).toBe(409);
    expect(last.json().code).toBe('VARIANT_LIMIT');
  });

  it('refuses a taken SKU (409 SKU_TAKEN), the same option values twice (409) and bad input (400)', async () => {
    const a = await createProduct(t, shop);
    const b = await createProduct(t, shop);
    const taken = await send(t.app, 'POST', `/api/v1/products/${b.id}/variants`, shop.staff, {
      sku: a.variants[0]!.sku,
      options: { size: 'S' },
      prices: { USD: 1 },
    });
    expect(taken.statusCode).toBe(409);
    expect(taken.json()).toMatchObject({
      code: 'SKU_TAKEN',
      sku: a.variants[0]!.sku,
      errors: [{ pointer: '/sku' }],
    });
    const twin = await send(t.app, 'POST', `/api/v1/products/${b.id}/variants`, shop.staff, {
      sku: `${b.handle}-TWIN`,
      options: { size: 'M' },
      prices: { USD: 1 },
    });
    expect(twin.statusCode).toBe(409);
    expect(twin.json().code).toBe('CONFLICT');
    const bad = await send(t.app, 'POST', `/api/v1/products/${b.id}/variants`, shop.staff, {
      sku: 'OK-SKU',
      prices: { EURO: 5, QQQ: 1 },
      weightGrams: -1,
      id: a.variants[0]!.id,
    });
    expect(bad.statusCode).toBe(400);
    expect(
      bad
        .json()
        .errors.map((e: { pointer: string }) => e.pointer)
        .sort(),
    ).toEqual(expect.arrayContaining(['/id', '/prices/EURO', '/weightGrams']));
    const unknownCurrency = await send(t.app, 'POST', `/api/v1/products/${b.id}/variants`, shop.staff, {
      sku: 'OK-SKU',
      options: { size: 'S' },
      prices: { QQQ: 1 },
    });
    expect(unknownCurrency.statusCode).toBe(400);
    expect(unknownCurrency.json().errors).toEqual([
      { in: 'body', pointer: '/prices/QQQ', message: 'QQQ is not an ISO 4217 currency code' },
    ]);
  });

  it('names the SKU and its field when another variant of the same product holds it (409 SKU_TAKEN)', async () => {
    const product = await createProduct(t, shop);
    const [first, second] = product.variants;
    const added = await send(t.app, 'POST', `/api/v1/products/${product.id}/variants`, shop.staff, {
      sku: first!.sku,
      options: { size: 'XL' },
      prices: { USD: 1 },
    });
    const replaced = await send(
      t.app,
      'PUT',
      `/api/v1/products/${product.id}/variants/${second!.id}`,
      shop.staff,
      { sku: first!.sku, options: { size: 'XL' }, prices: { USD: 1 } },
    );
    for (const response of [added, replaced]) {
      expect(response.statusCode).toBe(409);
      expect(response.json()).toMatchObject({
        code: 'SKU_TAKEN',
        sku: first!.sku,
        detail: `SKU "${first!.sku}" is already used by another variant`,
        errors: [{ pointer: '/sku' }],
      });
    }
  });

  it("answers 404 for a variant of another product, and keeps the other product's variant", async () => {
    const a = await createProduct(t, shop);
    const b = await createProduct(t, shop);
    const foreign = a.variants[0]!.id;
    const put = await send(t.app, 'PUT', `/api/v1/products/${b.id}/variants/${foreign}`, shop.staff, {
      sku: 'HIJACK',
      prices: { USD: 1 },
    });
    expect(put.statusCode).toBe(404);
    expect(
      (await send(t.app, 'DELETE', `/api/v1/products/${b.id}/variants/${foreign}`, shop.staff)).statusCode,
    ).toBe(404);
    expect((await product(a.id)).variants[0]).toEqual(a.variants[0]);
  });

  it('cuts a long default title at 255 characters without splitting one', async () => {
    const p = await createProduct(t, shop);
    const options = { a: 'x'.repeat(100), b: 'y'.repeat(100), c: `${'z'.repeat(47)}🔴🔴🔴` };
    const added = await send(t.app, 'POST', `/api/v1/products/${p.id}/variants`, shop.staff, {
      sku: `${p.handle}-LONG`,
      options,
      prices: { USD: 1 },
    });
    expect(added.statusCode, added.body).toBe(201);
    // 100 + 3 + 100 + 3 + 47 characters, then two of the three red circles (two UTF-16 units each).
    expect(added.json<Variant>().title).toBe(`${options.a} / ${options.b} / ${'z'.repeat(47)}🔴🔴`);
  });

  it('lets only staff change variants', async () => {
    const p = await createProduct(t, shop);
    const body = { sku: 'NOPE', prices: { USD: 1 } };
    expect(
      (await send(t.app, 'POST', `/api/v1/products/${p.id}/variants`, shop.customer, body)).statusCode,
    ).toBe(403);
    expect(
      (await send(t.app, 'POST', `/api/v1/products/${p.id}/variants`, shop.anonymous, body)).statusCode,
    ).toBe(401);
  });
});
