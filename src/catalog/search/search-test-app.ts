import { createTestTenant, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { addUser, bearer, send } from '../../identity/users/user-test-fixtures.ts';
import { createInventory } from '../../inventory/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createWal } from '../../wal/index.ts';
import { createCatalog } from '../index.ts';
import { FIXTURE_CATEGORIES, type FixtureProduct } from './fixture-catalog.ts';

/**
 * The app as server.ts composes it for search: the WAL (events), the catalog (with its search)
 * and inventory (whose events feed the in-stock filter).
 */
export async function startSearchApp(): Promise<TestApp> {
  return startTestApp(
    {},
    {
      modules: async (ctx, identity) => {
        const wal = await createWal(ctx);
        const base = { events: wal.events, resolveTenant: identity.resolveTenant };
        // The catalog indexes every change, mounts search's routes and subscribes catalog.stock-levels.
        const catalog = await createCatalog(ctx, base);
        const inventory = await createInventory(ctx, base);
        return [wal, catalog, inventory];
      },
    },
  );
}

export type SearchShop = TestTenant & {
  staff: Record<string, string>;
  customer: Record<string, string>;
  anonymous: Record<string, string>;
  categoryIds: Map<string, string>;
  /** Product id by fixture index. */
  productIds: string[];
};

/** A tenant with staff, a customer, the fixture categories and these products, all through the API. */
export async function openShop(t: TestApp, slug: string, products: FixtureProduct[]): Promise<SearchShop> {
  const tenant = await createTestTenant(t, slug);
  await addUser(t, tenant.id, `staff@${slug}.test`, 'staff');
  await addUser(t, tenant.id, `buyer@${slug}.test`, 'customer');
  const staff = await bearer(t, slug, `staff@${slug}.test`);
  const categoryIds = new Map<string, string>();
  for (const c of FIXTURE_CATEGORIES) {
    const parentId = c.parentHandle ? categoryIds.get(c.parentHandle)! : null;
    const res = await send(t.app, 'POST', '/api/v1/categories', staff, {
      name: c.name,
      handle: c.handle,
      parentId,
    });
    if (res.statusCode !== 201) throw new Error(`category ${c.handle}: ${res.statusCode} ${res.body}`);
    categoryIds.set(c.handle, res.json<{ id: string }>().id);
  }
  const productIds: string[] = [];
  for (let i = 0; i < products.length; i += 100) {
    const res = await send(t.app, 'POST', '/api/v1/products/batch', staff, {
      products: products.slice(i, i + 100),
    });
    const body = res.json<{ results: Array<{ status: string; id?: string; detail?: string }> }>();
    for (const row of body.results) {
      if (!row.id) throw new Error(`product refused: ${JSON.stringify(row)}`);
      productIds.push(row.id);
    }
  }
  return {
    ...tenant,
    staff,
    customer: await bearer(t, slug, `buyer@${slug}.test`),
    anonymous: { 'x-tenant': slug },
    categoryIds,
    productIds,
  };
}
