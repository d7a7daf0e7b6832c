import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CatalogTestApp,
  createProduct,
  createShop,
  type Shop,
  send,
  startCatalogApp,
} from '../catalog-test-fixtures.ts';
import type { Product } from '../products/product-read.ts';
import type { Category } from './category-read.ts';

let t: CatalogTestApp;
let shop: Shop;
let other: Shop;

beforeAll(async () => {
  t = await startCatalogApp();
  shop = await createShop(t, 'tree');
  other = await createShop(t, 'forest');
});
afterAll(() => t.close());

async function category(body: Record<string, unknown>, s: Shop = shop): Promise<Category> {
  const response = await send(t.app, 'POST', '/api/v1/categories', s.staff, body);
  if (response.statusCode !== 201)
    throw new Error(`create category: ${response.statusCode} ${response.body}`);
  return response.json<Category>();
}

const path = (c: Category) => c.path.map((p) => p.handle);

describe('categories', () => {
  it('builds a tree whose every category carries its breadcrumb path, listed parents first', async () => {
    const clothing = await category({ name: 'Clothing' });
    const men = await category({ name: "Men's", parentId: clothing.id, position: 2 });
    const women = await category({ name: 'Women', parentId: clothing.id, position: 1 });
    const shirts = await category({ name: 'Shirts', handle: 'mens-shirts', parentId: men.id });
    expect([men.handle, women.depth]).toEqual(['men-s', 1]);
    expect(shirts).toMatchObject({ depth: 2, parentId: men.id });
    expect(shirts.path).toEqual([
      { id: clothing.id, name: 'Clothing', handle: 'clothing' },
      { id: men.id, name: "Men's", handle: 'men-s' },
      { id: shirts.id, name: 'Shirts', handle: 'mens-shirts' },
    ]);
    const byHandle = await send(t.app, 'GET', '/api/v1/categories/mens-shirts', shop.anonymous);
    expect(byHandle.json()).toEqual(shirts);
    const list = await send(t.app, 'GET', '/api/v1/categories', shop.anonymous);
    expect(list.json().items.map((c: Category) => c.handle)).toEqual([
      'clothing',
      'women',
      'men-s',
      'mens-shirts',
    ]);
  });

  it('moves a subtree: paths below follow; under itself or its descendant is 409 CATEGORY_CYCLE', async () => {
    const a = await category({ name: 'Home' });
    const b = await category({ name: 'Kitchen', parentId: a.id });
    const c = await category({ name: 'Cookware', parentId: b.id });
    for (const parentId of [a.id, c.id]) {
      const cycle = await send(t.app, 'PUT', `/api/v1/categories/${a.id}`, shop.staff, {
        name: 'Home',
        parentId,
      });
      expect(cycle.statusCode).toBe(409);
      expect(cycle.json().code).toBe('CATEGORY_CYCLE');
    }
    const garden = await category({ name: 'Garden' });
    const moved = await send(t.app, 'PUT', `/api/v1/categories/${b.id}`, shop.staff, {
      name: 'Outdoor Kitchen',
      parentId: garden.id,
    });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(path(moved.json())).toEqual(['garden', 'kitchen']);
    const below = await send(t.app, 'GET', `/api/v1/categories/${c.id}`, shop.customer);
    expect(below.json().path.map((p: { name: string }) => p.name)).toEqual([
      'Garden',
      'Outdoor Kitchen',
      'Cookware',
    ]);
  });

  it('never lets two concurrent moves make a cycle between them', async () => {
    const x = await category({ name: 'Race X' });
    const y = await category({ name: 'Race Y' });
    const [one, two] = await Promise.all([
      send(t.app, 'PUT', `/api/v1/categories/${x.id}`, shop.staff, { name: 'Race X', parentId: y.id }),
      send(t.app, 'PUT', `/api/v1/categories/${y.id}`, shop.staff, { name: 'Race Y', parentId: x.id }),
    ]);
    expect([one!.statusCode, two!.statusCode].sort()).toEqual([200, 409]);
  });

  it('refuses to delete a category with children or products (409 CATEGORY_IN_USE), deletes an empty one', async () => {
    const parent = await category({ name: 'Toys' });
    const child = await category({ name: 'Puzzles', parentId: parent.id });
    const withChild = await send(t.app, 'DELETE', `/api/v1/categories/${parent.id}`, shop.staff);
    expect(withChild.statusCode).toBe(409);
    expect(withChild.json().code).toBe('CATEGORY_IN_USE');
    const product = await createProduct(t, shop, { categoryIds: [child.id] });
    expect(product.categories).toEqual([{ id: child.id, name: 'Puzzles', handle: 'puzzles' }]);
    const withProduct = await send(t.app, 'DELETE', `/api/v1/categories/${child.id}`, shop.staff);
    expect(withProduct.json().code).toBe('CATEGORY_IN_USE');
    await send(t.app, 'PUT', `/api/v1/products/${product.id}`, shop.staff, { title: product.title });
    expect((await send(t.app, 'DELETE', `/api/v1/categories/${child.id}`, shop.staff)).statusCode).toBe(204);
    expect((await send(t.app, 'DELETE', `/api/v1/categories/${parent.id}`, shop.staff)).statusCode).toBe(204);
    expect((await send(t.app, 'GET', `/api/v1/categories/${parent.id}`, shop.staff)).statusCode).toBe(404);
  });

  it('shows a renamed category in its products at once (the cached product is dropped)', async () => {
    const cat = await category({ name: 'Lamps' });
    const product = await createProduct(t, shop, { categoryHandles: ['lamps'] });
    expect(
      (await send(t.app, 'GET', `/api/v1/products/${product.id}`, shop.anonymous)).json<Product>().categories,
    ).toEqual([{ id: cat.id, name: 'Lamps', handle: 'lamps' }]);
    await send(t.app, 'PUT', `/api/v1/categories/${cat.id}`, shop.staff, {
      name: 'Lighting',
      handle: 'lighting',
    });
    const after = await send(t.app, 'GET', `/api/v1/products/${product.id}`, shop.anonymous);
    expect(after.json<Product>().categories).toEqual([{ id: cat.id, name: 'Lighting', handle: 'lighting' }]);
  });

  it('answers bad input with 400 and duplicates with 409 HANDLE_TAKEN', async () => {
    await category({ name: 'Unique', handle: 'unique-cat' });
    const dup = await send(t.app, 'POST', '/api/v1/categories', shop.staff, {
      name: 'Other',
      handle: 'unique-cat',
    });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().code).toBe('HANDLE_TAKEN');
    const bad = await send(t.app, 'POST', '/api/v1/categories', shop.staff, {
      name: '',
      handle: 'Bad Handle',
      position: -1,
      colour: 'red',
    });
    expect(bad.statusCode).toBe(400);
    expect(
      bad
        .json()
        .errors.map((e: { pointer: string }) => e.pointer)
        .sort(),
    ).toEqual(['/colour', '/handle', '/name', '/position']);
    const orphan = await send(t.app, 'POST', '/api/v1/categories', shop.staff, {
      name: 'Orphan',
      parentId: '0190b5a4-7c2e-7000-8000-000000000001',
    });
    expect(orphan.statusCode).toBe(400);
    expect(orphan.json().errors[0].pointer).toBe('/parentId');
    const unknown = await send(t.app, 'POST', '/api/v1/products', shop.staff, {
      title: 'X',
      variants: [{ sku: 'CAT-X', prices: { USD: 1 } }],
      categoryIds: ['0190b5a4-7c2e-7000-8000-000000000001'],
      categoryHandles: ['nope'],
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().errors.map((e: { pointer: string }) => e.pointer)).toEqual([
      '/categoryIds/0',
      '/categoryHandles/0',
    ]);
  });

  it('never makes a handle shaped like an id from a name, so the category can be read by its handle', async () => {
    const idShaped = await category({ name: '0190d4c5-7f8b-7c3e-9a4b-123456789abc' });
    expect(idShaped.handle).toBe('0190d4c5-7f8b-7c3e-9a4b-123456789abc-2');
    const read = await send(t.app, 'GET', `/api/v1/categories/${idShaped.handle}`, shop.anonymous);
    expect(read.statusCode).toBe(200);
    expect(read.json<Category>().id).toBe(idShaped.id);
  });

  it("keeps tenants apart: another tenant's category is 404 on every route and cannot be a parent or a product's", async () => {
    const mine = await category({ name: 'Secret Shelf' });
    for (const [method, body] of [
      ['GET', undefined],
      ['PUT', { name: 'Stolen' }],
      ['DELETE', undefined],
    ] as const) {
      for (const ref of [mine.id, mine.handle]) {
        const response = await send(t.app, method, `/api/v1/categories/${ref}`, other.staff, body);
        expect(response.statusCode, `${method} ${ref}`).toBe(404);
      }
    }
    expect((await send(t.app, 'GET', `/api/v1/categories/${mine.id}`, other.anonymous)).statusCode).toBe(404);
    const list = await send(t.app, 'GET', '/api/v1/categories', other.anonymous);
    expect(list.json().items.some((c: Category) => c.id === mine.id)).toBe(false);
    const child = await send(t.app, 'POST', '/api/v1/categories', other.staff, {
      name: 'Child',
      parentId: mine.id,
    });
    expect(child.statusCode).toBe(400);
    const product = await send(t.app, 'POST', '/api/v1/products', other.staff, {
      title: 'Y',
      variants: [{ sku: 'CAT-Y', prices: { USD: 1 } }],
      categoryIds: [mine.id],
    });
    expect(product.statusCode).toBe(400);
    expect((await send(t.app, 'GET', `/api/v1/categories/${mine.id}`, shop.staff)).json()).toEqual(mine);
  });

  it('lets only staff write categories', async () => {
    expect((await send(t.app, 'POST', '/api/v1/categories', shop.customer, { name: 'No' })).statusCode).toBe(
      403,
    );
    expect((await send(t.app, 'POST', '/api/v1/categories', shop.anonymous, { name: 'No' })).statusCode).toBe(
      401,
    );
  });
});
