import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import { type SecondProcess, testDatabaseKind } from '../../platform/testing/index.ts';
import {
  type CatalogTestApp,
  createProduct,
  createShop,
  type Shop,
  send,
  startCatalogApp,
  startSecondCatalogProcess,
  until,
} from '../catalog-test-fixtures.ts';
import { createProductCache } from './product-cache.ts';
import type { Product } from './product-read.ts';

let t: CatalogTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startCatalogApp();
  shop = await createShop(t, 'cached');
});
afterAll(() => t.close());

const title = async (app: CatalogTestApp['app'], ref: string, headers = shop.anonymous) => {
  const response = await send(app, 'GET', `/api/v1/products/${ref}`, headers);
  return response.statusCode === 200 ? response.json<Product>().title : response.statusCode;
};

describe('product cache', () => {
  it('serves repeated reads by id and by handle from memory', async () => {
    const product = await createProduct(t, shop);
    const before = t.catalog.deps.cache.size;
    await title(t.app, product.id);
    await title(t.app, product.handle);
    expect(t.catalog.deps.cache.size).toBe(before + 1);
  });

  it('drops a product changed behind its back (plain SQL) when the database announces it', async () => {
    const product = await createProduct(t, shop);
    expect(await title(t.app, product.handle)).toBe(product.title);
    await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
      sql`update catalog.products set title = 'Changed In SQL' where id = ${product.id}`.execute(trx),
    );
    await until(
      async () => (await title(t.app, product.handle)) === 'Changed In SQL',
      'the NOTIFY to drop the product',
    );
    await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
      sql`update catalog.products set status = 'draft' where id = ${product.id}`.execute(trx),
    );
    await until(async () => (await title(t.app, product.id)) === 404, 'the draft to be hidden');
    expect(await title(t.app, product.id, shop.staff)).toBe('Changed In SQL');
  });

  it('does not cache a read that overlapped a change', async () => {
    const cache = createProductCache({ ttlMs: 60_000 });
    cache.enable();
    const stale = { id: '0190b5a4-7c2e-7000-8000-000000000001', handle: 'h', title: 'old' } as Product;
    await cache.read('t1', stale.id, async () => {
      cache.onChange(`t1:${stale.id}`);
      return stale;
    });
    expect(cache.size).toBe(0);
    await cache.read('t1', stale.id, async () => stale);
    expect(cache.size).toBe(1);
    cache.onChange('t1:*');
    expect(cache.size).toBe(0);
    // Another tenant asking for the same id never gets this tenant's entry.
    await cache.read('t1', stale.id, async () => stale);
    expect(await cache.read('t2', stale.id, async () => undefined)).toBeUndefined();
  });

  describe.runIf(testDatabaseKind() === 'postgres')('across processes', () => {
    let second: SecondProcess;
    beforeAll(async () => {
      second = await startSecondCatalogProcess(t.databaseUrl!);
    });
    afterAll(() => second.close());

    it('drops the product on every process when one of them changes it', async () => {
      const product = await createProduct(t, shop);
      // The second process caches it.
      expect(await title(second.app, product.id)).toBe(product.title);
      expect(await title(second.app, product.handle)).toBe(product.title);
      const put = await send(t.app, 'PUT', `/api/v1/products/${product.id}`, shop.staff, {
        title: 'Changed On The First',
        status: 'active',
      });
      expect(put.statusCode).toBe(200);
      await until(
        async () => (await title(second.app, product.handle)) === 'Changed On The First',
        'the second process to drop its copy',
      );
      expect(await title(second.app, product.id)).toBe('Changed On The First');
      // A product made a draft on one process is hidden from shoppers on the other.
      await send(t.app, 'PUT', `/api/v1/products/${product.id}`, shop.staff, {
        title: 'Hidden',
        status: 'draft',
      });
      await until(
        async () => (await title(second.app, product.id)) === 404,
        'the draft to be hidden on the second',
      );
      await send(t.app, 'DELETE', `/api/v1/products/${product.id}`, shop.staff);
      await until(
        async () => (await title(second.app, product.id, shop.staff)) === 404,
        'the deleted product to be gone on the second',
      );
    });
  });
});
