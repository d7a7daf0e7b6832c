import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CatalogTestApp,
  createProduct,
  createShop,
  type Shop,
  send,
  startCatalogApp,
} from '../catalog-test-fixtures.ts';

/** This app's product cache budget: a few of the products below fill it. */
const BUDGET = 512 * 1024;

let t: CatalogTestApp;
let hostile: Shop;
let other: Shop;

beforeAll(async () => {
  t = await startCatalogApp({}, { productCacheMaxChars: BUDGET });
  hostile = await createShop(t, 'heavy');
  other = await createShop(t, 'light');
});
afterAll(() => t.close());

/** A product as big as its limits let a tenant admin make it: 50 images of 2,000-character URLs, 20,000 characters of text. */
const heavyFields = (n: number) => ({
  description: 'x'.repeat(20_000),
  images: Array.from({ length: 50 }, (_, i) => ({
    url: `https://img.example/${n}/${i}/${'p'.repeat(2000)}`,
    alt: 'a'.repeat(500),
  })),
});

describe('product cache weight', () => {
  it("holds at most its budget of JSON however big a tenant's products are, and still serves reads", async () => {
    const heavy = [];
    for (let n = 0; n < 8; n++) heavy.push(await createProduct(t, hostile, heavyFields(n)));
    let weight = 0;
    for (const product of heavy) {
      const response = await send(t.app, 'GET', `/api/v1/products/${product.id}`, hostile.anonymous);
      expect(response.statusCode).toBe(200);
      weight = Math.max(weight, response.body.length);
    }
    // Eight products of about 130,000 characters each: more than the budget holds.
    expect(weight * heavy.length).toBeGreaterThan(BUDGET);
    const cache = t.catalog.deps.cache;
    expect(cache.size).toBeLessThanOrEqual(Math.floor(BUDGET / (weight * 0.9)));
    expect(cache.chars).toBeLessThanOrEqual(BUDGET);
    // Another tenant's small product is cached beside them (the oldest heavy ones went out).
    const small = await createProduct(t, other);
    const sizeBefore = cache.size;
    const read = await send(t.app, 'GET', `/api/v1/products/${small.handle}`, other.anonymous);
    expect(read.json<{ title: string }>().title).toBe(small.title);
    expect(cache.size).toBeGreaterThanOrEqual(Math.min(sizeBefore, 1));
    expect(cache.chars).toBeLessThanOrEqual(BUDGET);
    expect((await send(t.app, 'GET', `/api/v1/products/${small.id}`, other.anonymous)).statusCode).toBe(200);
  });
});
