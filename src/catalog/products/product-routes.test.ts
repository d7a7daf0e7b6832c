import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login } from '../../identity/auth/auth-test-fixtures.ts';
import {
  type CatalogTestApp,
  createProduct,
  createShop,
  productBody,
  type Shop,
  send,
  startCatalogApp,
} from '../catalog-test-fixtures.ts';
import type { Product } from './product-read.ts';

let t: CatalogTestApp;
let shop: Shop;
let other: Shop;

beforeAll(async () => {
  t = await startCatalogApp();
  shop = await createShop(t, 'linens');
  other = await createShop(t, 'rival');
});
afterAll(() => t.close());

const pointers = (body: { errors?: { pointer: string }[] }) =>
  (body.errors ?? []).map((e) => e.pointer).sort();

describe('products', () => {
  it('creates a product with its variants, a handle made from the title, and reads it by id and by handle', async () => {
    const response = await send(t.app, 'POST', '/api/v1/products', shop.staff, {
      title: 'Crème Brûlée Mug — Large!',
      description: 'Stoneware.',
      status: 'active',
      tags: ['kitchen', ' Kitchen ', 'mugs'],
      attributes: { material: 'stoneware', capacityMl: 450, dishwasherSafe: true },
      images: [{ url: 'https://cdn.example.com/mug.jpg', alt: 'A mug' }],
      seo: { title: 'Mug', description: 'The mug' },
      variants: [
        {
          sku: 'MUG-L-RED',
          options: { size: 'L', colour: 'red' },
          prices: { USD: 1999, JPY: 3000 },
          compareAtPrices: { USD: 2499 },
          weightGrams: 420,
          barcode: '4006381333931',
        },
      ],
    });
    expect(response.statusCode, response.body).toBe(201);
    const product = response.json<Product>();
    expect(product).toMatchObject({
      handle: 'creme-brulee-mug-large',
      status: 'active',
      tags: ['kitchen', 'mugs'],
      version: 1,
      categories: [],
      variants: [
        {
          sku: 'MUG-L-RED',
          title: 'L / red',
          options: { size: 'L', colour: 'red' },
          prices: { USD: 1999, JPY: 3000 },
          compareAtPrices: { USD: 2499 },
          weightGrams: 420,
          position: 0,
        },
      ],
    });
    expect(product.publishedAt).not.toBeNull();
    expect(response.headers.location).toBe(`/api/v1/products/${product.id}`);
    const byId = await send(t.app, 'GET', `/api/v1/products/${product.id}`, shop.anonymous);
    expect(byId.statusCode).toBe(200);
    expect(byId.json()).toEqual(product);
    expect(byId.headers.etag).toBe('"1"');
    const byHandle = await send(t.app, 'GET', '/api/v1/products/creme-brulee-mug-large', shop.customer);
    expect(byHandle.json()).toEqual(product);
  });

  it('gives a second product of the same title the next free handle', async () => {
    const a = await createProduct(t, shop, { title: 'Tea Towel' });
    const b = await createProduct(t, shop, { title: 'Tea towel' });
    expect([a.handle, b.handle]).toEqual(['tea-towel', 'tea-towel-2']);
  });

  it('never gives a product a handle it cannot be read by: shaped like an id, or the name of a route', async () => {
    const idShaped = await createProduct(t, shop, { title: '0190d4c5-7f8b-7c3e-9a4b-123456789abc' });
    const named = await createProduct(t, shop, { title: 'Suggest' });
    expect([idShaped.handle, named.handle]).toEqual(['0190d4c5-7f8b-7c3e-9a4b-123456789abc-2', 'suggest-2']);
    // The longest handle a product may have (255): past the router's old 200 for a path parameter.
    const longest = await createProduct(t, shop, { handle: `${'long-'.repeat(50)}hands` });
    expect(longest.handle).toHaveLength(255);
    for (const product of [idShaped, named, longest]) {
      const read = await send(t.app, 'GET', `/api/v1/products/${product.handle}`, shop.anonymous);
      expect(read.statusCode).toBe(200);
      expect(read.json<Product>().id).toBe(product.id);
    }
    const given = await send(
      t.app,
      'POST',
      '/api/v1/products',
      shop.staff,
      productBody({ handle: 'suggest' }),
    );
    expect(given.statusCode).toBe(400);
    expect(pointers(given.json())).toEqual(['/handle']);
  });

  it('replays a create sent again with the same Idempotency-Key instead of making a second product', async () => {
    const body = productBody();
    const headers = {
      ...shop.staff,
      'idempotency-key': `create-${String(body['title']).replaceAll(' ', '-')}`,
    };
    const first = await send(t.app, 'POST', '/api/v1/products', headers, body);
    const again = await send(t.app, 'POST', '/api/v1/products', headers, body);
    expect([first.statusCode, again.statusCode]).toEqual([201, 201]);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(first.json().id);
    const other = await send(t.app, 'POST', '/api/v1/products', headers, { ...body, title: 'Another' });
    expect(other.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
  });

  it('answers bad input with 400 naming every failing field', async () => {
    const response = await send(t.app, 'POST', '/api/v1/products', shop.staff, {
      title: 'Bad',
      images: [{ url: 'javascript:alert(1)' }],
      variants: [{ sku: 'BAD-1', prices: { XYZ: 100, USD: 5 }, compareAtPrices: { ABC: 1 } }],
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('VALIDATION_FAILED');
    expect(pointers(response.json())).toEqual([
      '/images/0/url',
      '/variants/0/compareAtPrices/ABC',
      '/variants/0/prices/XYZ',
    ]);
    const schema = await send(t.app, 'POST', '/api/v1/products', shop.staff, {
      title: '',
      handle: 'Not A Slug',
      status: 'live',
      variants: [{ sku: ' ', prices: { USD: -1, usd: 3 } }],
      extra: true,
    });
    expect(schema.statusCode).toBe(400);
    expect(pointers(schema.json())).toEqual(
      expect.arrayContaining(['/extra', '/handle', '/status', '/title', '/variants/0/sku']),
    );
  });

  it('refuses a product without variants, more than 100, negative or fractional prices, and unbounded attributes', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ variants: undefined }, '/variants'],
      [{ variants: [] }, '/variants'],
      [
        {
          variants: Array.from({ length: 101 }, (_, i) => ({
            sku: `MANY-${i}`,
            prices: { USD: 1 },
            options: { n: `${i}` },
          })),
        },
        '/variants',
      ],
      [{ variants: [{ sku: 'FRAC-1', prices: { USD: 9.99 } }] }, '/variants/0/prices/USD'],
      [{ variants: [{ sku: 'NEG-1', prices: { USD: -5 } }] }, '/variants/0/prices/USD'],
      [{ attributes: { deep: { a: { b: { c: { d: { e: 1 } } } } } } }, '/attributes'],
      [{ attributes: { big: 'x'.repeat(20_000) } }, '/attributes'],
      [{ tags: Array.from({ length: 51 }, (_, i) => `t${i}`) }, '/tags'],
      [{ handle: '0190b5a4-7c2e-7000-8000-000000000001' }, '/handle'],
    ];
    for (const [fields, pointer] of cases) {
      const body = productBody(fields);
      if (fields['variants'] === undefined && 'variants' in fields) delete body['variants'];
      const response = await send(t.app, 'POST', '/api/v1/products', shop.staff, body);
      expect(response.statusCode, JSON.stringify(fields).slice(0, 80)).toBe(400);
      expect(pointers(response.json()), JSON.stringify(fields).slice(0, 80)).toContain(pointer);
    }
  });

  it('holds a product to 50 categories through categoryIds and categoryHandles together, on create and on PUT', async () => {
    const categories: { id: string; handle: string }[] = [];
    for (let i = 0; i < 60; i++) {
      const response = await send(t.app, 'POST', '/api/v1/categories', shop.staff, { name: `Shelf ${i}` });
      expect(response.statusCode, response.body).toBe(201);
      categories.push(response.json());
    }
    const ids = (from: number, to: number) => categories.slice(from, to).map((c) => c.id);
    const handles = (from: number, to: number) => categories.slice(from, to).map((c) => c.handle);
    const expectTooMany = (response: Awaited<ReturnType<typeof send>>) => {
      expect(response.statusCode, response.body).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
      expect(pointers(response.json())).toEqual(['/categoryHandles']);
    };
    expectTooMany(
      await send(
        t.app,
        'POST',
        '/api/v1/products',
        shop.staff,
        productBody({ categoryIds: ids(0, 30), categoryHandles: handles(30, 60) }),
      ),
    );
    // 50 in all, a category named both ways counted once: taken.
    const product = await createProduct(t, shop, {
      categoryIds: ids(0, 30),
      categoryHandles: handles(20, 50),
    });
    expect(product.categories).toHaveLength(50);
    expectTooMany(
      await send(t.app, 'PUT', `/api/v1/products/${product.id}`, shop.staff, {
        title: product.title,
        categoryIds: ids(0, 26),
        categoryHandles: handles(26, 52),
      }),
    );
    const kept = await send(t.app, 'GET', `/api/v1/products/${product.id}`, shop.staff);
    expect(kept.json<Product>()).toMatchObject({ version: product.version });
    expect(kept.json<Product>().categories).toHaveLength(50);
  });

  it('answers 409 HANDLE_TAKEN and SKU_TAKEN for duplicates, within one request too', async () => {
    const first = await createProduct(t, shop, { handle: 'dup-handle' });
    const handle = await send(
      t.app,
      'POST',
      '/api/v1/products',
      shop.staff,
      productBody({ handle: 'dup-handle' }),
    );
    expect(handle.statusCode).toBe(409);
    expect(handle.json()).toMatchObject({ code: 'HANDLE_TAKEN', errors: [{ pointer: '/handle' }] });
    const sku = await send(
      t.app,
      'POST',
      '/api/v1/products',
      shop.staff,
      productBody({
        variants: [
          { sku: 'OTHER-1', prices: { USD: 1 }, options: { a: '1' } },
          { sku: first.variants[0]!.sku, prices: { USD: 1 } },
        ],
      }),
    );
    expect(sku.statusCode).toBe(409);
    expect(sku.json()).toMatchObject({
      code: 'SKU_TAKEN',
      sku: first.variants[0]!.sku,
      errors: [{ pointer: '/variants/1/sku' }],
    });
    const twice = await send(
      t.app,
      'POST',
      '/api/v1/products',
      shop.staff,
      productBody({
        variants: [
          { sku: 'TWICE', prices: { USD: 1 }, options: { size: 'S' } },
          { sku: 'TWICE', prices: { USD: 1 }, options: { size: 'M' } },
        ],
      }),
    );
    expect(twice.statusCode).toBe(409);
    expect(twice.json()).toMatchObject({ code: 'SKU_TAKEN', errors: [{ pointer: '/variants/1/sku' }] });
    // Another tenant may use the same handle and SKU.
    const elsewhere = await send(
      t.app,
      'POST',
      '/api/v1/products',
      other.staff,
      productBody({ handle: 'dup-handle', variants: [{ sku: first.variants[0]!.sku, prices: { USD: 1 } }] }),
    );
    expect(elsewhere.statusCode).toBe(201);
  });

  it('lets exactly one of many concurrent creates with one handle or one SKU win', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        send(
          t.app,
          'POST',
          '/api/v1/products',
          shop.staff,
          productBody({ handle: 'race-handle', variants: [{ sku: `RACE-H-${i}`, prices: { USD: 1 } }] }),
        ),
      ),
    );
    expect(attempts.map((r) => r.statusCode).sort()).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    expect(attempts.filter((r) => r.statusCode === 409).every((r) => r.json().code === 'HANDLE_TAKEN')).toBe(
      true,
    );
    const skus = await Promise.all(
      Array.from({ length: 8 }, () =>
        send(
          t.app,
          'POST',
          '/api/v1/products',
          shop.staff,
          productBody({ variants: [{ sku: 'RACE-SKU', prices: { USD: 1 } }] }),
        ),
      ),
    );
    expect(skus.map((r) => r.statusCode).sort()).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    expect(skus.filter((r) => r.statusCode === 409).every((r) => r.json().code === 'SKU_TAKEN')).toBe(true);
  });

  it('never shows a draft or archived product to shoppers, anonymous or signed in; staff see it', async () => {
    const draft = await createProduct(t, shop, { status: 'draft' });
    const archived = await createProduct(t, shop, { status: 'archived' });
    for (const product of [draft, archived]) {
      for (const ref of [product.id, product.handle]) {
        for (const headers of [shop.anonymous, shop.customer]) {
          const seen = await send(t.app, 'GET', `/api/v1/products/${ref}`, headers);
          expect(seen.statusCode).toBe(404);
          expect(seen.body).not.toContain(product.title);
          const variants = await send(t.app, 'GET', `/api/v1/products/${ref}/variants`, headers);
          expect(variants.statusCode).toBe(404);
        }
        expect((await send(t.app, 'GET', `/api/v1/products/${ref}`, shop.staff)).statusCode).toBe(200);
      }
    }
    expect(draft.publishedAt).toBeNull();
    // Published, then a draft again: the cached active copy does not leak to shoppers.
    const flip = await createProduct(t, shop, { status: 'active' });
    expect((await send(t.app, 'GET', `/api/v1/products/${flip.id}`, shop.anonymous)).statusCode).toBe(200);
    const hidden = await send(t.app, 'PUT', `/api/v1/products/${flip.id}`, shop.staff, {
      title: flip.title,
      status: 'draft',
    });
    expect(hidden.statusCode).toBe(200);
    expect((await send(t.app, 'GET', `/api/v1/products/${flip.id}`, shop.anonymous)).statusCode).toBe(404);
    expect((await send(t.app, 'GET', `/api/v1/products/${flip.handle}`, shop.customer)).statusCode).toBe(404);
  });

  it('lets API keys with products:write write and with products:read see drafts; other keys see active products only', async () => {
    const admin = { authorization: `Bearer ${(await login(t.app, shop.slug, shop.adminEmail)).accessToken}` };
    const key = async (permissions: string[]) => {
      const created = await send(t.app, 'POST', '/api/v1/api-keys', admin, {
        name: permissions.join() || 'none',
        permissions,
      });
      expect(created.statusCode, created.body).toBe(201);
      return { 'x-api-key': created.json<{ key: string }>().key };
    };
    const writer = await key(['products:write']);
    const reader = await key(['products:read']);
    const other = await key(['users:read']);
    const draft = await send(t.app, 'POST', '/api/v1/products', writer, productBody({ status: 'draft' }));
    expect(draft.statusCode, draft.body).toBe(201);
    const id = draft.json<Product>().id;
    expect((await send(t.app, 'GET', `/api/v1/products/${id}`, reader)).statusCode).toBe(200);
    expect((await send(t.app, 'GET', `/api/v1/products/${id}`, other)).statusCode).toBe(404);
    expect((await send(t.app, 'PUT', `/api/v1/products/${id}`, reader, { title: 'No' })).statusCode).toBe(
      403,
    );
  });

  it('asks anonymous shoppers to name the store, and keeps a customer to their own', async () => {
    const product = await createProduct(t, shop);
    const none = await send(t.app, 'GET', `/api/v1/products/${product.id}`, {});
    expect(none.json().code).toBe('TENANT_REQUIRED');
    const wrong = await send(t.app, 'GET', `/api/v1/products/${product.id}`, {
      ...shop.customer,
      'x-tenant': 'rival',
    });
    expect(wrong.statusCode).toBe(400);
  });

  it('names an unknown or foreign X-Tenant in its answer without repeating a long one in full', async () => {
    const product = await createProduct(t, shop);
    const long = `x${'y'.repeat(5000)}`;
    const unknown = await send(t.app, 'GET', `/api/v1/products/${product.id}`, { 'x-tenant': long });
    const foreign = await send(t.app, 'GET', `/api/v1/products/${product.id}`, {
      ...shop.customer,
      'x-tenant': long,
    });
    expect([unknown.statusCode, foreign.statusCode]).toEqual([404, 400]);
    for (const answer of [unknown, foreign]) {
      const { detail } = answer.json<{ detail: string }>();
      expect(detail).toContain('xyyy');
      expect(detail.length).toBeLessThan(200);
    }
  });

  it('replaces a product with PUT: handle kept when absent, variants matched by SKU keep their ids', async () => {
    const product = await createProduct(t, shop, { tags: ['old'] });
    const [m, l] = product.variants;
    const response = await send(t.app, 'PUT', `/api/v1/products/${product.id}`, shop.staff, {
      title: 'Renamed Shirt',
      status: 'active',
      variants: [
        { sku: l!.sku, options: { size: 'L' }, prices: { USD: 5900 } },
        { sku: 'NEW-XL', options: { size: 'XL' }, prices: { USD: 6900 } },
      ],
    });
    expect(response.statusCode, response.body).toBe(200);
    const updated = response.json<Product>();
    expect(updated).toMatchObject({ handle: product.handle, title: 'Renamed Shirt', tags: [], version: 2 });
    expect(updated.variants.map((v) => [v.sku, v.position])).toEqual([
      [l!.sku, 0],
      ['NEW-XL', 1],
    ]);
    expect(updated.variants[0]!.id).toBe(l!.id);
    expect(updated.variants[0]).toMatchObject({
      options: { size: 'L' },
      prices: { USD: 5900 },
      barcode: null,
    });
    expect(updated.variants.some((v) => v.id === m!.id)).toBe(false);
    expect(response.headers.etag).toBe('"2"');
    // Two variants may swap SKUs in one PUT.
    const swapped = await send(t.app, 'PUT', `/api/v1/products/${product.id}`, shop.staff, {
      title: 'Renamed Shirt',
      variants: [
        { id: updated.variants[0]!.id, sku: 'NEW-XL', prices: { USD: 1 }, options: { size: 'L' } },
        { id: updated.variants[1]!.id, sku: l!.sku, prices: { USD: 1 }, options: { size: 'XL' } },
      ],
    });
    expect(swapped.statusCode, swapped.body).toBe(200);
    expect(swapped.json<Product>().variants.map((v) => [v.sku, v.options, v.prices])).toEqual([
      ['NEW-XL', { size: 'L' }, { USD: 1 }],
      [l!.sku, { size: 'XL' }, { USD: 1 }],
    ]);
    // Without variants, PUT keeps them.
    const kept = await send(t.app, 'PUT', `/api/v1/products/${product.handle}`, shop.staff, {
      title: 'Again',
    });
    expect(kept.json<Product>().variants.map((v) => v.id)).toEqual(
      swapped.json<Product>().variants.map((v) => v.id),
    );
  });

  it('refuses a PUT or DELETE whose If-Match names an older version with 412', async () => {
    const product = await createProduct(t, shop);
    const ok = await send(
      t.app,
      'PUT',
      `/api/v1/products/${product.id}`,
      { ...shop.staff, 'if-match': '"1"' },
      { title: 'v2' },
    );
    expect(ok.statusCode).toBe(200);
    const stale = await send(
      t.app,
      'PUT',
      `/api/v1/products/${product.id}`,
      { ...shop.staff, 'if-match': 'W/"1"' },
      { title: 'v3' },
    );
    expect(stale.statusCode).toBe(412);
    expect(stale.json()).toMatchObject({ code: 'PRECONDITION_FAILED', currentVersion: 2 });
    const bad = await send(
      t.app,
      'PUT',
      `/api/v1/products/${product.id}`,
      { ...shop.staff, 'if-match': 'abc' },
      { title: 'v3' },
    );
    expect(bad.statusCode).toBe(400);
    expect(
      (await send(t.app, 'DELETE', `/api/v1/products/${product.id}`, { ...shop.staff, 'if-match': '1' }))
        .statusCode,
    ).toBe(412);
    expect(
      (await send(t.app, 'DELETE', `/api/v1/products/${product.id}`, { ...shop.staff, 'if-match': '2' }))
        .statusCode,
    ).toBe(204);
  });

  it('deletes a product and its variants; it is gone for everyone', async () => {
    const product = await createProduct(t, shop);
    expect((await send(t.app, 'GET', `/api/v1/products/${product.id}`, shop.anonymous)).statusCode).toBe(200);
    expect((await send(t.app, 'DELETE', `/api/v1/products/${product.id}`, shop.staff)).statusCode).toBe(204);
    expect((await send(t.app, 'GET', `/api/v1/products/${product.id}`, shop.staff)).statusCode).toBe(404);
    expect((await send(t.app, 'GET', `/api/v1/products/${product.handle}`, shop.anonymous)).statusCode).toBe(
      404,
    );
    expect(await t.catalog.findVariants(shop.id, { ids: product.variants.map((v) => v.id) })).toEqual([]);
    expect((await send(t.app, 'DELETE', `/api/v1/products/${product.id}`, shop.staff)).statusCode).toBe(404);
  });

  it('lets only staff write: customers get 403, anonymous callers 401', async () => {
    const product = await createProduct(t, shop);
    for (const [headers, status] of [
      [shop.customer, 403],
      [shop.anonymous, 401],
    ] as const) {
      expect((await send(t.app, 'POST', '/api/v1/products', headers, productBody())).statusCode).toBe(status);
      expect(
        (await send(t.app, 'PUT', `/api/v1/products/${product.id}`, headers, { title: 'x' })).statusCode,
      ).toBe(status);
      expect((await send(t.app, 'DELETE', `/api/v1/products/${product.id}`, headers)).statusCode).toBe(
        status,
      );
    }
  });

  it("answers 404 to another tenant for every route taking a product's id or handle", async () => {
    const product = await createProduct(t, shop, { handle: 'only-linens' });
    const variant = product.variants[0]!;
    for (const ref of [product.id, product.handle]) {
      const calls: Array<[Parameters<typeof send>[1], string, unknown?]> = [
        ['GET', `/api/v1/products/${ref}`],
        ['PUT', `/api/v1/products/${ref}`, { title: 'stolen' }],
        ['DELETE', `/api/v1/products/${ref}`],
        ['GET', `/api/v1/products/${ref}/variants`],
        ['POST', `/api/v1/products/${ref}/variants`, { sku: 'STOLEN-1', prices: { USD: 1 } }],
        ['PUT', `/api/v1/products/${ref}/variants/${variant.id}`, { sku: 'STOLEN-2', prices: { USD: 1 } }],
        ['DELETE', `/api/v1/products/${ref}/variants/${variant.id}`],
      ];
      for (const [method, url, body] of calls) {
        const response = await send(t.app, method, url, other.staff, body);
        expect(response.statusCode, `${method} ${url}`).toBe(404);
        if (method === 'GET') expect((await send(t.app, method, url, other.anonymous)).statusCode).toBe(404);
      }
    }
    expect(await t.catalog.findVariants(other.id, { ids: [variant.id], skus: [variant.sku] })).toEqual([]);
    const still = await send(t.app, 'GET', `/api/v1/products/${product.id}`, shop.staff);
    expect(still.json<Product>()).toEqual(product);
  });

  it('indexes long attribute names and values ending in an emoji, cut between whole characters, and filters by them', async () => {
    // 64 and 100 characters (the lengths a facet keeps), each ending in a surrogate pair; the
    // second value is one character longer and is cut to 100.
    const name = `${'n'.repeat(63)}😀`;
    const value = `${'a'.repeat(99)}😀`;
    const longer = `${'b'.repeat(99)}😀😀`;
    const response = await send(
      t.app,
      'POST',
      '/api/v1/products',
      shop.staff,
      productBody({
        attributes: { [name]: 'x', material: longer },
        variants: [{ sku: `EMOJI-${Date.now()}`, options: { finish: value }, prices: { USD: 100 } }],
      }),
    );
    expect(response.statusCode, response.body).toBe(201);
    const product = response.json<Product>();
    const find = (attribute: string) =>
      send(
        t.app,
        'GET',
        `/api/v1/products?attribute=${encodeURIComponent(attribute)}&facets=true`,
        shop.staff,
      );
    for (const attribute of [`finish:${value}`, `${name}:x`, `material:${longer.slice(0, -2)}`]) {
      const found = await find(attribute);
      expect(found.statusCode, found.body).toBe(200);
      const page = found.json<{
        items: { id: string }[];
        facets: { attributes: { name: string; values: { value: string }[] }[] };
      }>();
      expect(page.items.map((i) => i.id)).toEqual([product.id]);
      expect(page.facets.attributes).toEqual(
        expect.arrayContaining([
          { name, values: [{ value: 'x', count: 1 }] },
          { name: 'finish', values: [{ value, count: 1 }] },
          { name: 'material', values: [{ value: longer.slice(0, -2), count: 1 }] },
        ]),
      );
    }
  });

  it('filters by attribute names holding a colon or a backslash, written escaped as its facets name them', async () => {
    const response = await send(
      t.app,
      'POST',
      '/api/v1/products',
      shop.staff,
      productBody({
        attributes: { 'size:eu': '42', 'a\\b': 'c:d' },
        variants: [{ sku: `COLON-${Date.now()}`, prices: { USD: 100 } }],
      }),
    );
    expect(response.statusCode, response.body).toBe(201);
    const product = response.json<Product>();
    const find = (...filters: string[]) =>
      send(
        t.app,
        'GET',
        `/api/v1/products?${filters.map((f) => `attribute=${encodeURIComponent(f)}`).join('&')}&facets=true`,
        shop.staff,
      );
    const found = await find('size\\:eu:42', 'A\\\\B:c:d');
    expect(found.statusCode, found.body).toBe(200);
    const page = found.json<{ items: { id: string }[]; facets: { attributes: { name: string }[] } }>();
    expect(page.items.map((i) => i.id)).toEqual([product.id]);
    expect(page.facets.attributes.map((a) => a.name).sort()).toEqual(['a\\b', 'size:eu']);
    // Unescaped, the name ends at the first colon: size is not an attribute of any product.
    const plain = await find('size:eu:42');
    expect(plain.statusCode, plain.body).toBe(200);
    expect(plain.json<{ items: unknown[] }>().items).toEqual([]);
    for (const bad of ['size\\eu:42', 'size\\:eu', 'trailing\\']) {
      const refused = await find(bad);
      expect(refused.statusCode, bad).toBe(400);
      expect(refused.json<{ code: string }>().code).toBe('VALIDATION_FAILED');
    }
  });

  it('finds variants for the cart by id and by SKU, with product status and prices', async () => {
    const product = await createProduct(t, shop, {
      status: 'draft',
      images: [{ url: 'https://cdn.example.com/a.png' }],
    });
    const [m, l] = product.variants;
    const found = await t.catalog.findVariants(shop.id, {
      ids: [m!.id, 'not-a-uuid'],
      skus: [l!.sku, 'NOPE'],
    });
    expect(found).toHaveLength(2);
    expect(found.find((v) => v.variantId === m!.id)).toEqual({
      variantId: m!.id,
      productId: product.id,
      sku: m!.sku,
      productTitle: product.title,
      variantTitle: 'M',
      productHandle: product.handle,
      productStatus: 'draft',
      prices: { USD: 4900, EUR: 4500 },
      compareAtPrices: {},
      options: { size: 'M' },
      weightGrams: null,
      image: 'https://cdn.example.com/a.png',
    });
  });
});
