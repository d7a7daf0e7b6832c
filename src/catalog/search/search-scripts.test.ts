import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CatalogTestApp,
  createProduct,
  createShop,
  type Shop,
  send,
  startCatalogApp,
} from '../catalog-test-fixtures.ts';

let t: CatalogTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startCatalogApp();
  shop = await createShop(t, 'scripts');
});
afterAll(() => t.close());

const search = async (q: string, extra = '') => {
  const res = await send(t.app, 'GET', `/api/v1/products?q=${encodeURIComponent(q)}${extra}`, shop.anonymous);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<{ items: { title: string }[]; nextCursor: string | null }>();
};

describe('search across scripts and Unicode forms', () => {
  it('finds a product by the words of its title as the shopper types them', async () => {
    await createProduct(t, shop, { title: 'रेशमी साड़ी', handle: 'silk-saree' });
    await createProduct(t, shop, { title: 'ผ้าไหม สวัสดี', handle: 'thai-silk' });
    expect((await search('साड़ी')).items.map((i) => i.title)).toEqual(['रेशमी साड़ी']);
    expect((await search('रेशमी साड़ी')).items.map((i) => i.title)).toEqual(['रेशमी साड़ी']);
    expect((await search('สวัสดี')).items.map((i) => i.title)).toEqual(['ผ้าไหม สวัสดี']);
  });

  it('finds a title written in full-width letters or with decomposed accents by what shoppers type', async () => {
    await createProduct(t, shop, { title: 'ＵＳＢ Ｃａｂｌｅ', handle: 'usb-cable' });
    await createProduct(t, shop, { title: 'Cafe\u0301 Mug', handle: 'cafe-mug' });
    expect((await search('usb cable')).items.map((i) => i.title)).toEqual(['ＵＳＢ Ｃａｂｌｅ']);
    expect((await search('ＵＳＢ')).items.map((i) => i.title)).toEqual(['ＵＳＢ Ｃａｂｌｅ']);
    expect((await search('café')).items.map((i) => i.title)).toEqual(['Cafe\u0301 Mug']);
    expect((await search('Cafe\u0301')).items.map((i) => i.title)).toEqual(['Cafe\u0301 Mug']);
  });

  it('pages a search whose word was cut at 40 characters', async () => {
    const long = `${'字'.repeat(39)}𠀀𠀁`;
    await createProduct(t, shop, { title: `${long} one`, handle: 'long-one' });
    await createProduct(t, shop, { title: `${long} two`, handle: 'long-two' });
    const first = await search(long, '&limit=1');
    expect(first.nextCursor).not.toBeNull();
    const second = await search(long, `&limit=1&cursor=${first.nextCursor}`);
    expect(second.items).toHaveLength(1);
  });
});
