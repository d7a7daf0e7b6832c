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
import { createSearchCache, searchKey } from './search-cache.ts';

let t: CatalogTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startCatalogApp();
  shop = await createShop(t, 'searchcache');
});
afterAll(() => t.close());

type Page = { items: Array<{ id: string; title: string; inStock: boolean }> };

const titles = async (app: CatalogTestApp['app'], q: string, headers = shop.anonymous) => {
  const response = await send(app, 'GET', `/api/v1/products?q=${encodeURIComponent(q)}`, headers);
  expect(response.statusCode).toBe(200);
  return response.json<Page>().items.map((i) => i.title);
};

describe('search cache', () => {
  it('keeps answers per tenant and query, and drops only the tenant that changed', async () => {
    const cache = createSearchCache({ ttlMs: 60_000 });
    let loads = 0;
    const load = (value: string) => async () => {
      loads += 1;
      return value;
    };
    // Off until enabled (until this process hears of every change).
    await cache.read('t1', 'q', load('a'));
    expect(cache.size).toBe(0);
    cache.enable();
    expect(await cache.read('t1', 'q', load('a'))).toBe('a');
    expect(await cache.read('t1', 'q', load('b'))).toBe('a');
    expect(await cache.read('t2', 'q', load('c'))).toBe('c');
    expect(loads).toBe(3);
    cache.onChange('t1');
    expect(await cache.read('t1', 'q', load('d'))).toBe('d');
    expect(await cache.read('t2', 'q', load('e'))).toBe('c');
    // '<tenant>:…' (a product announcement) names the tenant too.
    cache.onChange('t2:*');
    expect(await cache.read('t2', 'q', load('f'))).toBe('f');
    cache.clear();
    expect(await cache.read('t1', 'q', load('g'))).toBe('g');
  });

  it('does not keep an answer whose load overlapped a change, keeps none past its time, and stays within its weight', async () => {
    let now = 0;
    const cache = createSearchCache({ ttlMs: 1000, maxChars: 160, now: () => now });
    cache.enable();
    await cache.read('t1', 'q', async () => {
      cache.onChange('t1');
      return 'stale';
    });
    expect(await cache.read('t1', 'q', async () => 'fresh')).toBe('fresh');
    expect(await cache.read('t1', 'q', async () => 'again')).toBe('fresh');
    now = 1001;
    expect(await cache.read('t1', 'q', async () => 'later')).toBe('later');
    // 10 characters at most each (a sixteenth), 160 together: the oldest go first.
    expect(await cache.read('t1', 'big', async () => 'x'.repeat(11))).toHaveLength(11);
    expect(await cache.read('t1', 'big', async () => 'y')).toBe('y');
    cache.clear();
    for (let i = 0; i < 20; i++)
      await cache.read('t1', `q${i}`, async () => `answer-${String(i).padStart(3, '0')}`);
    expect(cache.size).toBe(16);
    expect(await cache.read('t1', 'q0', async () => 'evicted')).toBe('evicted');
    expect(await cache.read('t1', 'q19', async () => 'kept?')).toBe('answer-019');
    const off = createSearchCache({ ttlMs: 0 });
    off.enable();
    await off.read('t1', 'q', async () => 'z');
    expect(off.size).toBe(0);
  });

  it('keys a query by its parameters whatever their order, and shoppers apart from staff', () => {
    expect(searchKey('list', false, { q: 'a', limit: 5 })).toBe(
      searchKey('list', false, { limit: 5, q: 'a' }),
    );
    expect(searchKey('list', false, { q: 'a' })).not.toBe(searchKey('list', true, { q: 'a' }));
    expect(searchKey('list', false, { q: 'a' })).not.toBe(searchKey('suggest', false, { q: 'a' }));
  });

  it('answers a search again after a product is written, and after its document changes behind its back', async () => {
    const product = await createProduct(t, shop, { title: 'Cachedlamp Desk Light' });
    expect(await titles(t.app, 'cachedlamp')).toEqual(['Cachedlamp Desk Light']);
    // Written by this process: the next search sees it at once.
    const put = await send(t.app, 'PUT', `/api/v1/products/${product.id}`, shop.staff, {
      title: 'Cachedlamp Floor Light',
      status: 'active',
    });
    expect(put.statusCode).toBe(200);
    expect(await titles(t.app, 'cachedlamp')).toEqual(['Cachedlamp Floor Light']);
    // A search document changed in SQL (as the stock subscriber of any process does): announced.
    const stock = async () =>
      (await send(t.app, 'GET', '/api/v1/products?q=cachedlamp', shop.anonymous)).json<Page>().items[0]
        ?.inStock;
    expect(await stock()).toBe(false);
    await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
      sql`update catalog.search_documents set in_stock = true where product_id = ${product.id}`.execute(trx),
    );
    await until(async () => (await stock()) === true, 'the NOTIFY to drop the cached search');
  });

  describe.runIf(testDatabaseKind() === 'postgres')('across processes', () => {
    let second: SecondProcess;
    beforeAll(async () => {
      second = await startSecondCatalogProcess(t.databaseUrl!);
    });
    afterAll(() => second.close());

    it('drops the answer on every process when one of them changes the catalog', async () => {
      const product = await createProduct(t, shop, { title: 'Twoproc Kettle' });
      expect(await titles(second.app, 'twoproc')).toEqual(['Twoproc Kettle']);
      await send(t.app, 'PUT', `/api/v1/products/${product.id}`, shop.staff, {
        title: 'Twoproc Teapot',
        status: 'active',
      });
      await until(
        async () => (await titles(second.app, 'twoproc'))[0] === 'Twoproc Teapot',
        'the second process to drop its answer',
      );
    });
  });
});
