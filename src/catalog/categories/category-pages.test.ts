import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import { type SecondProcess, testDatabaseKind } from '../../platform/testing/index.ts';
import { uuidv7 } from '../../platform/uuidv7.ts';
import {
  type CatalogTestApp,
  createShop,
  type Shop,
  send,
  startCatalogApp,
  startSecondCatalogProcess,
  until,
} from '../catalog-test-fixtures.ts';
import type { CatalogDb } from '../tables.ts';
import type { Category } from './category-read.ts';
import { MAX_CATEGORIES, MAX_DEPTH } from './category-schemas.ts';

let t: CatalogTestApp;
let big: Shop;
/** The big shop's category ids in tree order, as seeded. */
const treeOrder: string[] = [];

type Page = { items: Category[]; nextCursor: string | null };

/**
 * The largest tree a tenant may hold: 2,000 categories in chains 10 levels deep, names of 200
 * characters and descriptions of 5,000, written in one statement (roots ordered by position).
 */
async function seedLargestTree(shop: Shop): Promise<void> {
  const rows: Array<Record<string, unknown>> = [];
  const chains = MAX_CATEGORIES / MAX_DEPTH;
  for (let chain = 0; chain < chains; chain += 1) {
    let parent: string | null = null;
    for (let level = 0; level < MAX_DEPTH; level += 1) {
      const id = uuidv7();
      rows.push({
        id,
        parent_id: parent,
        name: `Category ${chain}.${level} `.padEnd(200, 'n'),
        handle: `c-${chain}-${level}`,
        description: 'd'.repeat(5000),
        position: level === 0 ? chain : 0,
      });
      treeOrder.push(id);
      parent = id;
    }
  }
  await withTenant(t.ctx.db.kysely as CatalogDb, shop.id, async (trx) => {
    await sql`insert into catalog.categories (id, tenant_id, parent_id, name, handle, description, position)
      select r.id, ${shop.id}, r.parent_id, r.name, r.handle, r.description, r.position
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r (id uuid, parent_id uuid, name text,
        handle text, description text, position int)`.execute(trx);
  });
}

async function page(app: CatalogTestApp['app'], shop: Shop, query = ''): Promise<Page> {
  const res = await send(app, 'GET', `/api/v1/categories${query}`, shop.anonymous);
  expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
  // What one anonymous request makes the server build and send.
  expect(res.body.length).toBeLessThan(2_000_000);
  return res.json<Page>();
}

beforeAll(async () => {
  t = await startCatalogApp();
  big = await createShop(t, 'big-tree');
  await seedLargestTree(big);
}, 120_000);
afterAll(() => t?.close());

describe('GET /categories pages', () => {
  it('answers the largest tree a page at a time (bounded), the pages walking it in tree order', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const body: Page = await page(t.app, big, cursor ? `?limit=200&cursor=${cursor}` : '?limit=200');
      expect(body.items.length).toBeLessThanOrEqual(200);
      seen.push(...body.items.map((c) => c.id));
      cursor = body.nextCursor;
      pages += 1;
    } while (cursor && pages < 50);
    expect(seen).toEqual(treeOrder);
    const first = await page(t.app, big);
    expect(first.items).toHaveLength(100);
    expect(first.items[9]).toMatchObject({ depth: 9, handle: 'c-0-9' });
    expect(first.items[9]!.path.map((p) => p.handle)).toEqual(
      Array.from({ length: 10 }, (_, level) => `c-0-${level}`),
    );
  });

  it('walks one level: the children of parentId, in sibling order', async () => {
    const children = await page(t.app, big, `?parentId=${treeOrder[0]}`);
    expect(children.items.map((c) => c.handle)).toEqual(['c-0-1']);
    expect(children.nextCursor).toBeNull();
  });

  it('refuses a limit past 200, a forged cursor and an unknown parent as problems', async () => {
    const tooMany = await send(t.app, 'GET', '/api/v1/categories?limit=201', big.anonymous);
    expect([tooMany.statusCode, tooMany.json().code]).toEqual([400, 'VALIDATION_FAILED']);
    const forged = await send(t.app, 'GET', '/api/v1/categories?cursor=abc', big.anonymous);
    expect([forged.statusCode, forged.json().code]).toEqual([400, 'INVALID_CURSOR']);
    const unknown = await send(t.app, 'GET', `/api/v1/categories?parentId=${uuidv7()}`, big.anonymous);
    expect([unknown.statusCode, unknown.json().code]).toEqual([404, 'NOT_FOUND']);
  });

  it('shows a rename, a new category and a deletion in the very next read', async () => {
    const shop = await createShop(t, 'small-tree');
    const created = await send(t.app, 'POST', '/api/v1/categories', shop.staff, { name: 'Lamps' });
    expect((await page(t.app, shop)).items.map((c) => c.name)).toEqual(['Lamps']);
    const id = created.json<Category>().id;
    await send(t.app, 'PUT', `/api/v1/categories/${id}`, shop.staff, { name: 'Lighting' });
    expect((await page(t.app, shop)).items.map((c) => c.name)).toEqual(['Lighting']);
    await send(t.app, 'POST', '/api/v1/categories', shop.staff, { name: 'Desks' });
    expect((await page(t.app, shop)).items.map((c) => c.name)).toEqual(['Desks', 'Lighting']);
    await send(t.app, 'DELETE', `/api/v1/categories/${id}`, shop.staff);
    expect((await page(t.app, shop)).items.map((c) => c.name)).toEqual(['Desks']);
  });

  describe.runIf(testDatabaseKind() === 'postgres')('across processes', () => {
    let second: SecondProcess;
    beforeAll(async () => {
      second = await startSecondCatalogProcess(t.databaseUrl!);
    });
    afterAll(() => second?.close());

    it('drops a cached page on another process when a category is created or renamed there', async () => {
      const shop = await createShop(t, 'two-trees');
      const names = async () => (await page(second.app, shop)).items.map((c) => c.name);
      expect(await names()).toEqual([]);
      const created = await send(t.app, 'POST', '/api/v1/categories', shop.staff, { name: 'Rugs' });
      await until(async () => (await names()).join() === 'Rugs', 'the new category on the second');
      const id = created.json<Category>().id;
      await send(t.app, 'PUT', `/api/v1/categories/${id}`, shop.staff, { name: 'Carpets' });
      await until(async () => (await names()).join() === 'Carpets', 'the rename on the second');
    });
  });
});
