import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CatalogTestApp,
  createProduct,
  createShop,
  productEvents,
  type Shop,
  send,
  startCatalogApp,
} from '../catalog-test-fixtures.ts';
import type { Product } from '../products/product-read.ts';

let t: CatalogTestApp;
let shop: Shop;
let other: Shop;

beforeAll(async () => {
  t = await startCatalogApp();
  shop = await createShop(t, 'bulk');
  other = await createShop(t, 'bulk-rival');
});
afterAll(() => t.close());

const row = (handle: string, fields: Record<string, unknown> = {}) => ({
  handle,
  title: `Product ${handle}`,
  status: 'active',
  variants: [{ sku: `${handle}-1`.toUpperCase(), prices: { USD: 1000 } }],
  ...fields,
});

type Result = { index: number; status: string; id?: string; code?: string; errors?: { pointer: string }[] };

describe('POST /products/batch', () => {
  it('answers every row on its own: good rows are written, bad ones refused with their fields', async () => {
    const existing = await createProduct(t, shop, { handle: 'already-here' });
    const response = await send(t.app, 'POST', '/api/v1/products/batch', shop.staff, {
      products: [
        row('batch-one'),
        row('batch-bad-price', { variants: [{ sku: 'BAD-PRICE', prices: { USD: -1 } }] }),
        row('already-here', {
          title: 'Replaced Title',
          variants: existing.variants.map((v) => ({ sku: v.sku, options: v.options, prices: { USD: 1 } })),
        }),
        'not an object',
        row('batch-taken-sku', { variants: [{ sku: existing.variants[0]!.sku, prices: { USD: 1 } }] }),
        row('batch-two', { categoryHandles: ['no-such-category'] }),
        { title: 'Made From Title', variants: [{ sku: 'FROM-TITLE', prices: { EUR: 500 } }] },
        row('batch-one', { title: 'Second write of batch-one' }),
      ],
    });
    expect(response.statusCode).toBe(207);
    const body = response.json<{ results: Result[]; created: number; updated: number; failed: number }>();
    expect(body.results.map((r) => [r.index, r.status, r.code])).toEqual([
      [0, 'created', undefined],
      [1, 'failed', 'VALIDATION_FAILED'],
      [2, 'updated', undefined],
      [3, 'failed', 'VALIDATION_FAILED'],
      [4, 'failed', 'SKU_TAKEN'],
      [5, 'failed', 'VALIDATION_FAILED'],
      [6, 'created', undefined],
      [7, 'updated', undefined],
    ]);
    expect(body).toMatchObject({ created: 2, updated: 2, unchanged: 0, failed: 4 });
    expect(body.results[1]!.errors!.map((e) => e.pointer)).toEqual(['/variants/0/prices/USD']);
    expect(body.results[3]!.errors!.map((e) => e.pointer)).toEqual(['/']);
    expect(body.results[4]!.errors!.map((e) => e.pointer)).toEqual(['/variants/0/sku']);
    expect(body.results[5]!.errors!.map((e) => e.pointer)).toEqual(['/categoryHandles/0']);
    const replaced = await send(t.app, 'GET', '/api/v1/products/already-here', shop.staff);
    expect(replaced.json<Product>()).toMatchObject({ id: existing.id, title: 'Replaced Title', version: 2 });
    expect(replaced.json<Product>().variants.map((v) => v.id)).toEqual(existing.variants.map((v) => v.id));
    const fromTitle = await send(t.app, 'GET', '/api/v1/products/made-from-title', shop.staff);
    expect(fromTitle.json<Product>().id).toBe(body.results[6]!.id);
    const one = await send(t.app, 'GET', '/api/v1/products/batch-one', shop.anonymous);
    expect(one.json<Product>().title).toBe('Second write of batch-one');
    for (const handle of ['batch-bad-price', 'batch-taken-sku', 'batch-two'])
      expect((await send(t.app, 'GET', `/api/v1/products/${handle}`, shop.staff)).statusCode).toBe(404);
  });

  it('refuses a row naming more than 50 categories through categoryIds and categoryHandles together, new or existing', async () => {
    const categories: { id: string; handle: string }[] = [];
    for (let i = 0; i < 60; i++) {
      const response = await send(t.app, 'POST', '/api/v1/categories', shop.staff, { name: `Aisle ${i}` });
      expect(response.statusCode, response.body).toBe(201);
      categories.push(response.json());
    }
    const tooMany = {
      categoryIds: categories.slice(0, 30).map((c) => c.id),
      categoryHandles: categories.slice(30, 60).map((c) => c.handle),
    };
    await createProduct(t, shop, { handle: 'batch-shelved' });
    const response = await send(t.app, 'POST', '/api/v1/products/batch', shop.staff, {
      products: [row('batch-crowded', tooMany), row('batch-shelved', tooMany), row('batch-roomy')],
    });
    expect(response.statusCode).toBe(207);
    const { results } = response.json<{ results: Result[] }>();
    expect(results.map((r) => [r.index, r.status, r.code])).toEqual([
      [0, 'failed', 'VALIDATION_FAILED'],
      [1, 'failed', 'VALIDATION_FAILED'],
      [2, 'created', undefined],
    ]);
    for (const failed of results.slice(0, 2))
      expect(failed.errors!.map((e) => e.pointer)).toEqual(['/categoryHandles']);
    expect((await send(t.app, 'GET', '/api/v1/products/batch-crowded', shop.staff)).statusCode).toBe(404);
    const shelved = await send(t.app, 'GET', '/api/v1/products/batch-shelved', shop.staff);
    expect(shelved.json<Product>()).toMatchObject({ version: 1, categories: [] });
  });

  it('writes 300 rows in chunks yet answers each on its own, and the good rows are searchable', async () => {
    const taken = await createProduct(t, shop, { handle: 'chunk-owner' });
    const rows: unknown[] = Array.from({ length: 300 }, (_, i) =>
      row(`chunk-${i}`, { title: `Marmoset lamp ${i}`, tags: ['marmoset'] }),
    );
    rows[10] = row('chunk-10', { status: 'sold-out' });
    rows[150] = row('chunk-150', { variants: [{ sku: 'CHUNK-7-1', prices: { USD: 5 } }] });
    rows[220] = row('chunk-220', { variants: [{ sku: taken.variants[0]!.sku, prices: { USD: 5 } }] });
    rows[299] = row('chunk-0', { title: 'Marmoset lamp 0, rewritten', tags: ['marmoset'] });
    const before = (await productEvents(t, shop.id)).length;
    const response = await send(t.app, 'POST', '/api/v1/products/batch', shop.staff, { products: rows });
    expect(response.statusCode).toBe(207);
    const body = response.json<{ results: Result[]; created: number; updated: number; failed: number }>();
    expect(body).toMatchObject({ created: 296, updated: 1, unchanged: 0, failed: 3 });
    expect(body.results.map((r) => r.index)).toEqual(rows.map((_, i) => i));
    const fails = body.results.filter((r) => r.status === 'failed');
    expect(fails.map((r) => [r.index, r.code, r.errors!.map((e) => e.pointer)])).toEqual([
      [10, 'VALIDATION_FAILED', ['/status']],
      [150, 'SKU_TAKEN', ['/variants/0/sku']],
      [220, 'SKU_TAKEN', ['/variants/0/sku']],
    ]);
    expect(body.results[299]).toMatchObject({ status: 'updated', id: body.results[0]!.id });
    // One event per written row, each with the product as its row left it.
    const events = (await productEvents(t, shop.id)).slice(before);
    expect(events.map((e) => e.type).filter((type) => type === 'mercato.product.created')).toHaveLength(296);
    const last = events.at(-1)!;
    expect([last.type, last.subject, last.data.title]).toEqual([
      'mercato.product.updated',
      body.results[0]!.id,
      'Marmoset lamp 0, rewritten',
    ]);
    const found = new Set<string>();
    let cursor: string | null = null;
    do {
      const url: string = `/api/v1/products?q=marmoset&limit=100${cursor ? `&cursor=${cursor}` : ''}`;
      const page: { items: { id: string }[]; nextCursor: string | null } = (
        await send(t.app, 'GET', url, shop.anonymous)
      ).json();
      for (const item of page.items) found.add(item.id);
      cursor = page.nextCursor;
    } while (cursor);
    const good = body.results.filter((r) => r.status !== 'failed').map((r) => r.id!);
    expect(found).toEqual(new Set(good));
  });

  it('is safe to send again: rows that would not change are reported unchanged', async () => {
    const body = {
      products: [row('again-a'), row('again-b', { tags: ['x'], attributes: { b: 1, a: { z: 1, y: 2 } } })],
    };
    const first = await send(t.app, 'POST', '/api/v1/products/batch', shop.staff, body);
    expect(first.json().results.map((r: Result) => r.status)).toEqual(['created', 'created']);
    const second = await send(t.app, 'POST', '/api/v1/products/batch', shop.staff, body);
    expect(second.json().results.map((r: Result) => r.status)).toEqual(['unchanged', 'unchanged']);
    expect((await send(t.app, 'GET', '/api/v1/products/again-b', shop.staff)).json<Product>().version).toBe(
      1,
    );
  });

  it('takes at most 1,000 rows, and only from staff', async () => {
    const tooMany = await send(t.app, 'POST', '/api/v1/products/batch', shop.staff, {
      products: Array.from({ length: 1001 }, (_, i) => row(`many-${i}`)),
    });
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().errors[0].pointer).toBe('/products');
    expect(
      (await send(t.app, 'POST', '/api/v1/products/batch', shop.customer, { products: [row('c')] }))
        .statusCode,
    ).toBe(403);
    expect(
      (await send(t.app, 'POST', '/api/v1/products/batch', shop.anonymous, { products: [row('c')] }))
        .statusCode,
    ).toBe(401);
  });

  it('refuses a row whose title makes a handle it could not be read by (shaped like an id, or a route)', async () => {
    const response = await send(t.app, 'POST', '/api/v1/products/batch', shop.staff, {
      products: [
        { title: 'Suggest', variants: [{ sku: 'ROUTE-NAMED', prices: { USD: 1 } }] },
        {
          title: '0190d4c5-7f8b-7c3e-9a4b-123456789abc',
          variants: [{ sku: 'ID-SHAPED', prices: { USD: 1 } }],
        },
        row('suggest'),
        row('suggest-box', { title: 'Suggest' }),
      ],
    });
    const results = response.json<{ results: Result[] }>().results;
    expect(results.map((r) => [r.status, r.code, r.errors?.map((e) => e.pointer)])).toEqual([
      ['failed', 'VALIDATION_FAILED', ['/handle']],
      ['failed', 'VALIDATION_FAILED', ['/handle']],
      ['failed', 'VALIDATION_FAILED', ['/handle']],
      ['created', undefined, undefined],
    ]);
  });

  it('refuses, row by row, what the API refuses before a body reaches it (file imports do not pass there)', async () => {
    const deep = JSON.parse(`${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`);
    const outcomes = await t.catalog.importProducts(shop.id, [
      row('import-nul', { title: 'Nul\u0000Title' }),
      row('import-surrogate', { description: 'half a pair: \ud800' }),
      row('import-deep', { attributes: deep }),
      row('import-nul-tag', { tags: ['ok', 'a\u0000b'] }),
      row('import-good'),
    ]);
    expect(
      outcomes.map((o) => (o.status === 'failed' ? [o.code, o.errors.map((e) => e.pointer)] : [o.status])),
    ).toEqual([
      ['VALIDATION_FAILED', ['/title']],
      ['INVALID_UNICODE', ['/description']],
      ['JSON_TOO_DEEP', [`/attributes${'/a'.repeat(63)}`]],
      ['VALIDATION_FAILED', ['/tags/1']],
      ['created'],
    ]);
    // Nothing of a refused row is stored (a lone surrogate would have become U+FFFD).
    expect((await send(t.app, 'GET', '/api/v1/products/import-surrogate', shop.staff)).statusCode).toBe(404);
  });

  it("writes into the caller's tenant only: another tenant's handle is a new product there", async () => {
    const mine = await createProduct(t, shop, { handle: 'tenant-owned' });
    const theirs = await send(t.app, 'POST', '/api/v1/products/batch', other.staff, {
      products: [row('tenant-owned', { title: 'Theirs' })],
    });
    expect(theirs.json().results[0]).toMatchObject({ status: 'created' });
    expect(theirs.json().results[0].id).not.toBe(mine.id);
    expect(
      (await send(t.app, 'GET', '/api/v1/products/tenant-owned', shop.staff)).json<Product>().title,
    ).toBe(mine.title);
  });
});
