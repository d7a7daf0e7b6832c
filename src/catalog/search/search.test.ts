import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../../identity/users/user-test-fixtures.ts';
import type { TestApp } from '../../platform/testing/index.ts';
import { bandEdges } from './facets.ts';
import { FIXTURE_CATEGORIES, type FixtureProduct, generateCatalog } from './fixture-catalog.ts';
import { openShop, type SearchShop, startSearchApp } from './search-test-app.ts';

type Item = {
  id: string;
  handle: string;
  title: string;
  status: string;
  tags: string[];
  categories: Array<{ id: string; handle: string }>;
  prices: Record<string, { min: number; max: number }>;
  inStock: boolean;
  createdAt: string;
};
type Facets = {
  matched: number;
  exact: boolean;
  categories: Array<{ id: string; handle: string; count: number }>;
  prices: Array<{ currency: string; min: number; max: number | null; count: number }>;
  attributes: Array<{ name: string; values: Array<{ value: string; count: number }> }>;
  inStock: { inStock: number; outOfStock: number };
};
type Page = {
  items: Item[];
  nextCursor: string | null;
  corrections?: Record<string, string[]>;
  facets?: Facets;
};

const CATALOG = generateCatalog({ count: 200, seed: 11 });
const OTHER = generateCatalog({ count: 8, seed: 5, prefix: 'b' });

let t: TestApp;
let shop: SearchShop;
let other: SearchShop;

// What the fixture says, computed here without the search code.
const active = CATALOG.map((p, i) => ({ p, i })).filter(({ p }) => p.status === 'active');
const ancestorsOf = (handle: string): string[] => {
  const category = FIXTURE_CATEGORIES.find((c) => c.handle === handle)!;
  return [handle, ...(category.parentHandle ? ancestorsOf(category.parentHandle) : [])];
};
const minEur = (p: FixtureProduct) => Math.min(...p.variants.map((v) => v.prices['EUR']!));
const pairsOf = (p: FixtureProduct): string[] => {
  const pairs = new Set<string>();
  for (const [k, v] of Object.entries(p.attributes)) pairs.add(`${k.toLowerCase()}=${String(v)}`);
  for (const v of p.variants) for (const [k, value] of Object.entries(v.options)) pairs.add(`${k}=${value}`);
  return [...pairs];
};
const idsWhere = (test: (p: FixtureProduct) => boolean) =>
  new Set(active.filter(({ p }) => test(p)).map(({ i }) => shop.productIds[i]!));

async function page(url: string, headers: Record<string, string> = shop.anonymous): Promise<Page> {
  const res = await send(t.app, 'GET', url, headers);
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${res.body}`);
  return res.json<Page>();
}

/** Every item of a list, page by page; fails on a repeated item. */
async function collect(url: string, headers: Record<string, string> = shop.anonymous): Promise<Item[]> {
  const items: Item[] = [];
  let cursor: string | null = null;
  do {
    const sep = url.includes('?') ? '&' : '?';
    const p: Page = await page(`${url}${cursor ? `${sep}cursor=${cursor}` : ''}`, headers);
    items.push(...p.items);
    cursor = p.nextCursor;
  } while (cursor);
  expect(new Set(items.map((i) => i.id)).size).toBe(items.length);
  return items;
}
const ids = (items: Item[]) => new Set(items.map((i) => i.id));

beforeAll(async () => {
  t = await startSearchApp();
  shop = await openShop(t, 'searchshop', CATALOG);
  other = await openShop(t, 'othershop', OTHER);
}, 300_000);

afterAll(async () => {
  await t?.close();
});

describe('text search', () => {
  it('ranks the products named by the query first and finds exactly the matching ones', async () => {
    const top = await page('/api/v1/products?q=laptop&limit=10');
    expect(top.items).toHaveLength(10);
    for (const item of top.items) expect(item.title).toMatch(/Laptop/);
    const all = await collect('/api/v1/products?q=laptop&limit=9');
    expect(ids(all)).toEqual(idsWhere((p) => p.categoryHandles[0] === 'laptops'));
  });

  it('puts the closest title first for several words', async () => {
    const { items } = await page('/api/v1/products?q=iphone%2015%20pro');
    expect(items[0]!.title).toMatch(/^Apple iPhone 15 Pro Smartphone/);
    for (const item of items) expect(item.title).toMatch(/iPhone 15 Pro/);
  });

  it('corrects typos from the shop’s own words: "iphnoe" finds iPhones', async () => {
    const result = await page('/api/v1/products?q=iphnoe');
    expect(result.corrections?.['iphnoe']).toContain('iphone');
    expect(result.items.length).toBeGreaterThan(0);
    for (const item of result.items) expect(item.title).toMatch(/iPhone/);
    const laptops = await page('/api/v1/products?q=laptpo');
    expect(laptops.items.length).toBeGreaterThan(0);
    for (const item of laptops.items) expect(item.title).toMatch(/Laptop/);
  });

  it('matches the last word as a prefix while typing', async () => {
    const all = await collect('/api/v1/products?q=lapt&limit=50');
    expect(ids(all)).toEqual(idsWhere((p) => p.categoryHandles[0] === 'laptops'));
  });

  it('finds nothing for words no product has', async () => {
    const result = await page('/api/v1/products?q=zzqxv%20wobblefrotz');
    expect(result.items).toEqual([]);
    expect(result.nextCursor).toBeNull();
  });
});

describe('suggest', () => {
  it('completes "lap" to laptop and lists laptops', async () => {
    const res = await page('/api/v1/products/suggest?q=lap' as string);
    const body = res as unknown as { terms: string[]; products: Array<{ title: string }> };
    expect(body.terms).toContain('laptop');
    expect(body.products.length).toBeGreaterThan(0);
    for (const p of body.products) expect(p.title).toMatch(/Laptop/);
  });

  it('keeps the words typed before the last one', async () => {
    const body = (await page('/api/v1/products/suggest?q=iphone%201')) as unknown as {
      terms: string[];
      products: Array<{ title: string }>;
    };
    expect(body.terms.every((term) => term.startsWith('iphone 1'))).toBe(true);
    for (const p of body.products) expect(p.title).toMatch(/iPhone 1/);
  });
});

describe('filters', () => {
  it('a category finds its whole subtree, by handle or id', async () => {
    const electronics = ['phones', 'laptops', 'audio'];
    const expected = idsWhere((p) => electronics.includes(p.categoryHandles[0]!));
    expect(ids(await collect('/api/v1/products?category=electronics&limit=100'))).toEqual(expected);
    const byId = await collect(`/api/v1/products?category=${shop.categoryIds.get('electronics')}&limit=100`);
    expect(ids(byId)).toEqual(expected);
  });

  it('tags (all of them), price range, attributes (any value of a name, every name) combine', async () => {
    const shoesOnSale = await collect('/api/v1/products?category=shoes&tag=sale&tag=running&limit=100');
    expect(ids(shoesOnSale)).toEqual(
      idsWhere(
        (p) => p.categoryHandles[0] === 'shoes' && p.tags.includes('sale') && p.tags.includes('running'),
      ),
    );
    const priced = await collect('/api/v1/products?currency=EUR&minPrice=5000&maxPrice=20000&limit=100');
    expect(ids(priced)).toEqual(idsWhere((p) => minEur(p) >= 5000 && minEur(p) <= 20000));
    const brands = await collect(
      '/api/v1/products?attribute=brand:Apple&attribute=brand:Sony&attribute=colour:Black&limit=100',
    );
    expect(brands.length).toBeGreaterThan(0);
    expect(ids(brands)).toEqual(
      idsWhere(
        (p) =>
          ['Apple', 'Sony'].includes(p.attributes['brand'] as string) && pairsOf(p).includes('colour=Black'),
      ),
    );
  });

  it('text and categories find the text’s matches within the categories’ subtrees, and facets count them', async () => {
    const subtree = (handles: string[]) =>
      idsWhere((p) => ancestorsOf(p.categoryHandles[0]!).some((h) => handles.includes(h)));
    const cases: Array<[string, string[]]> = [
      ['sale', ['electronics']], // a tag, in the title-and-tags match, a root category
      ['black', ['apparel']], // an attribute value, matched only outside the heading
      ['free delivery', ['shoes']], // every description mentions it, a leaf category
      ['sony', ['audio', 'phones']], // several categories: any of them
      ['sale', ['kitchen', 'books']],
    ];
    for (const [q, handles] of cases) {
      const within = subtree(handles);
      const everywhere = ids(await collect(`/api/v1/products?q=${encodeURIComponent(q)}&limit=100`));
      const expected = new Set([...everywhere].filter((id) => within.has(id)));
      expect(expected.size, `${q} in ${handles}`).toBeGreaterThan(0);
      const query = `q=${encodeURIComponent(q)}&${handles.map((h) => `category=${h}`).join('&')}`;
      expect(ids(await collect(`/api/v1/products?${query}&limit=7`)), `${q} in ${handles}`).toEqual(expected);
      const { facets } = await page(`/api/v1/products?${query}&facets=true`);
      expect(facets!.matched, `${q} in ${handles}`).toBe(expected.size);
    }
  });

  it('text and filters together', async () => {
    const cheapShoes = await collect('/api/v1/products?q=running&currency=EUR&maxPrice=10000&limit=100');
    expect(ids(cheapShoes)).toEqual(idsWhere((p) => p.categoryHandles[0] === 'shoes' && minEur(p) <= 10000));
  });
});

describe('facets', () => {
  it('count the matches per category (with ancestors), attribute value, price band and stock', async () => {
    const { facets } = await page('/api/v1/products?category=apparel&facets=true&currency=EUR&limit=1');
    const matching = active
      .filter(({ p }) => ancestorsOf(p.categoryHandles[0]!).includes('apparel'))
      .map(({ p }) => p);
    expect(facets!.matched).toBe(matching.length);
    expect(facets!.exact).toBe(true);
    const categoryCounts = new Map<string, number>();
    for (const p of matching)
      for (const h of ancestorsOf(p.categoryHandles[0]!))
        categoryCounts.set(h, (categoryCounts.get(h) ?? 0) + 1);
    expect(new Map(facets!.categories.map((c) => [c.handle, c.count]))).toEqual(categoryCounts);
    const brandCounts = new Map<string, number>();
    for (const p of matching) {
      const brand = p.attributes['brand'] as string;
      brandCounts.set(brand, (brandCounts.get(brand) ?? 0) + 1);
    }
    const brandFacet = facets!.attributes.find((a) => a.name === 'brand')!;
    expect(new Map(brandFacet.values.map((v) => [v.value, v.count]))).toEqual(brandCounts);
    const sizeFacet = facets!.attributes.find((a) => a.name === 'size')!;
    const sizeCounts = new Map<string, number>();
    for (const p of matching)
      for (const pair of pairsOf(p).filter((x) => x.startsWith('size=')))
        sizeCounts.set(pair.slice(5), (sizeCounts.get(pair.slice(5)) ?? 0) + 1);
    expect(new Map(sizeFacet.values.map((v) => [v.value, v.count]))).toEqual(sizeCounts);
    const edges = bandEdges('EUR');
    const bandCounts = new Map<number, number>();
    for (const p of matching) {
      const min = [...edges].reverse().find((e) => minEur(p) >= e)!;
      bandCounts.set(min, (bandCounts.get(min) ?? 0) + 1);
    }
    expect(new Map(facets!.prices.map((b) => [b.min, b.count]))).toEqual(bandCounts);
    expect(facets!.inStock.inStock + facets!.inStock.outOfStock).toBe(matching.length);
  });

  it('count what a text search matches, as many as its pages hold', async () => {
    const { facets } = await page('/api/v1/products?q=shoes&facets=true');
    const all = await collect('/api/v1/products?q=shoes&limit=4');
    expect(facets!.matched).toBe(all.length);
    expect(all.length).toBeGreaterThan(0);
  });
});

describe('facets of a price sort', () => {
  it('count only the products it lists: those with a price in the currency', async () => {
    // Half the products are priced in USD only: a sort by EUR price leaves them out.
    const products = generateCatalog({ count: 12, seed: 23, prefix: 'p' }).map((p, i) => ({
      ...p,
      status: 'active' as const,
      variants: p.variants.map((v) => ({ ...v, prices: i % 2 === 0 ? v.prices : { USD: v.prices['USD']! } })),
    }));
    const priced = await openShop(t, 'pricedshop', products);
    for (const query of [
      'sort=price_asc&currency=EUR',
      `q=${encodeURIComponent('free delivery')}&sort=price_desc&currency=EUR`,
    ]) {
      const listed = await collect(`/api/v1/products?${query}&limit=4`, priced.anonymous);
      expect(listed.length, query).toBe(6);
      const { facets } = await page(`/api/v1/products?${query}&facets=true`, priced.anonymous);
      expect(facets!.matched, query).toBe(listed.length);
      expect(facets!.inStock.inStock + facets!.inStock.outOfStock, query).toBe(listed.length);
      expect(
        facets!.prices.reduce((sum, band) => sum + band.count, 0),
        query,
      ).toBe(listed.length);
    }
  });
});

describe('sorts and pages', () => {
  it('price ascending and descending page through every product once, in order', async () => {
    const expected = idsWhere((p) => p.categoryHandles[0] === 'kitchen');
    const asc = await collect('/api/v1/products?category=kitchen&sort=price_asc&currency=EUR&limit=5');
    expect(ids(asc)).toEqual(expected);
    const ascPrices = asc.map((i) => i.prices['EUR']!.min);
    expect(ascPrices).toEqual([...ascPrices].sort((a, b) => a - b));
    const desc = await collect('/api/v1/products?category=kitchen&sort=price_desc&currency=EUR&limit=3');
    expect(ids(desc)).toEqual(expected);
    const descPrices = desc.map((i) => i.prices['EUR']!.min);
    expect(descPrices).toEqual([...descPrices].sort((a, b) => b - a));
    const textAsc = await collect('/api/v1/products?q=shirt&sort=price_asc&currency=EUR&limit=4');
    const textPrices = textAsc.map((i) => i.prices['EUR']!.min);
    expect(textPrices).toEqual([...textPrices].sort((a, b) => a - b));
  });

  it('newest first pages through every active product once', async () => {
    const all = await collect('/api/v1/products?limit=37');
    expect(ids(all)).toEqual(idsWhere(() => true));
    const times = all.map((i) => i.createdAt);
    expect(times).toEqual([...times].sort().reverse());
  });

  it('relevance pages hold no repeats and no gaps', async () => {
    const small = await collect('/api/v1/products?q=black&limit=3');
    const big = await page('/api/v1/products?q=black&limit=100');
    expect(big.nextCursor).toBeNull();
    expect(small.map((i) => i.id)).toEqual(big.items.map((i) => i.id));
  });
});

describe('visibility', () => {
  const drafts = () => idsWhereStatus('draft');
  const idsWhereStatus = (status: string) =>
    new Set(
      CATALOG.map((p, i) => ({ p, i }))
        .filter(({ p }) => p.status === status)
        .map(({ i }) => shop.productIds[i]!),
    );

  it('shoppers never see drafts or archived products; staff see them', async () => {
    expect(drafts().size).toBeGreaterThan(0);
    for (const headers of [shop.anonymous, shop.customer]) {
      const seen = ids(await collect('/api/v1/products?limit=100', headers));
      for (const id of drafts()) expect(seen.has(id)).toBe(false);
      for (const id of idsWhereStatus('archived')) expect(seen.has(id)).toBe(false);
      const draft = CATALOG[CATALOG.findIndex((p) => p.status === 'draft')]!;
      const found = await collect(`/api/v1/products?q=${encodeURIComponent(draft.title)}&limit=100`, headers);
      for (const item of found) expect(item.status).toBe('active');
      const res = await send(t.app, 'GET', '/api/v1/products?status=draft', headers);
      expect(res.statusCode).toBe(403);
      const draftId = [...drafts()][0]!;
      expect((await send(t.app, 'GET', `/api/v1/products/${draftId}/related`, headers)).statusCode).toBe(404);
    }
    expect(ids(await collect('/api/v1/products?status=draft&limit=100', shop.staff))).toEqual(drafts());
    const everything = await collect('/api/v1/products?limit=100', shop.staff);
    expect(everything).toHaveLength(CATALOG.length);
  });

  it('a tenant sees only its own products, and 404 for another’s ids', async () => {
    const mine = await collect('/api/v1/products?limit=100', other.anonymous);
    expect(ids(mine)).toEqual(
      new Set(
        OTHER.map((p, i) => ({ p, i }))
          .filter(({ p }) => p.status === 'active')
          .map(({ i }) => other.productIds[i]!),
      ),
    );
    const laptops = await collect('/api/v1/products?q=laptop&limit=100', other.staff);
    for (const item of laptops) expect(other.productIds).toContain(item.id);
    const foreign = shop.productIds[active[0]!.i]!;
    expect(
      (await send(t.app, 'GET', `/api/v1/products/${foreign}/related`, other.anonymous)).statusCode,
    ).toBe(404);
    expect((await send(t.app, 'GET', `/api/v1/products/${foreign}/related`, other.staff)).statusCode).toBe(
      404,
    );
    const suggestions = (await page('/api/v1/products/suggest?q=lap', other.anonymous)) as unknown as {
      products: Array<{ id: string }>;
    };
    for (const p of suggestions.products) expect(other.productIds).toContain(p.id);
  });
});

describe('related', () => {
  it('ranks products of the same category and tags first, by id or handle', async () => {
    const { i, p } = active.find(({ p }) => p.categoryHandles[0] === 'laptops')!;
    const byId = await page(`/api/v1/products/${shop.productIds[i]}/related?limit=5`);
    expect(byId.items).toHaveLength(5);
    for (const item of byId.items) {
      expect(item.categories.map((c) => c.handle)).toContain('laptops');
      expect(item.id).not.toBe(shop.productIds[i]);
    }
    const byHandle = await page(`/api/v1/products/${p.handle}/related?limit=5`);
    expect(byHandle.items.map((x) => x.id)).toEqual(byId.items.map((x) => x.id));
  });
});

describe('bad input', () => {
  it.each([
    ['a cursor we did not issue', '/api/v1/products?cursor=bm9wZQ', 'INVALID_CURSOR'],
    [
      'a forged cursor',
      `/api/v1/products?cursor=${Buffer.from('{"s":"newest","k":"x","i":"y"}').toString('base64url')}`,
      'INVALID_CURSOR',
    ],
    [
      'a relevance cursor whose rank no PostgreSQL real holds (it rounds to 0)',
      `/api/v1/products?q=laptop&cursor=${Buffer.from(
        JSON.stringify({
          s: 'relevance',
          k: 1e-50,
          i: '01a232b2-40f3-7596-8a8a-45b345a8ce7d',
          g: [['laptop']],
        }),
      ).toString('base64url')}`,
      'INVALID_CURSOR',
    ],
    ['an unknown sort', '/api/v1/products?sort=cheapest', 'VALIDATION_FAILED'],
    ['a query over 200 characters', `/api/v1/products?q=${'a'.repeat(201)}`, 'VALIDATION_FAILED'],
    ['a price sort without currency', '/api/v1/products?sort=price_asc', 'VALIDATION_FAILED'],
    ['minPrice over maxPrice', '/api/v1/products?currency=EUR&minPrice=10&maxPrice=5', 'VALIDATION_FAILED'],
    ['a bad currency', '/api/v1/products?currency=euro', 'VALIDATION_FAILED'],
    ['an unknown parameter', '/api/v1/products?colour=red', 'VALIDATION_FAILED'],
    ['a limit over 100', '/api/v1/products?limit=101', 'VALIDATION_FAILED'],
    ['a bad attribute filter', '/api/v1/products?attribute=colour', 'VALIDATION_FAILED'],
    [
      'too many tags',
      `/api/v1/products?${Array.from({ length: 11 }, (_, n) => `tag=t${n}`).join('&')}`,
      'VALIDATION_FAILED',
    ],
    ['an empty suggest', '/api/v1/products/suggest?q=', 'VALIDATION_FAILED'],
    ['a bad related id', '/api/v1/products/Not%20A%20Handle/related', 'VALIDATION_FAILED'],
  ])('%s is a 400', async (_, url, code) => {
    const res = await send(t.app, 'GET', url, shop.anonymous);
    expect(res.statusCode).toBe(400);
    expect(res.json<{ code: string }>().code).toBe(code);
  });

  it('a cursor of another sort or query is refused', async () => {
    const first = await page('/api/v1/products?q=laptop&limit=2');
    const other = await send(
      t.app,
      'GET',
      `/api/v1/products?q=phone&limit=2&cursor=${first.nextCursor}`,
      shop.anonymous,
    );
    expect(other.statusCode).toBe(400);
    const resorted = await send(
      t.app,
      'GET',
      `/api/v1/products?q=laptop&sort=newest&limit=2&cursor=${first.nextCursor}`,
      shop.anonymous,
    );
    expect(resorted.statusCode).toBe(400);
  });

  it('anonymous shoppers must name the store', async () => {
    const res = await send(t.app, 'GET', '/api/v1/products?q=laptop', {});
    expect(res.statusCode).toBe(400);
    expect(res.json<{ code: string }>().code).toBe('TENANT_REQUIRED');
  });

  it('operators in the query are words, not syntax', async () => {
    for (const q of ["laptop' | 'phone", 'laptop & !', '(((', '\\:*', 'a:*B | <->']) {
      const res = await send(t.app, 'GET', `/api/v1/products?q=${encodeURIComponent(q)}`, shop.anonymous);
      expect(res.statusCode).toBe(200);
    }
  });
});
