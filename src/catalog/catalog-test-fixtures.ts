import { sql } from 'kysely';
import { createTestTenant, type TestTenant } from '../identity/auth/auth-test-fixtures.ts';
import { addUser, bearer, send } from '../identity/users/user-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import type { AppContext, MercatoModule } from '../platform/index.ts';
import {
  type SecondProcess,
  startSecondProcess,
  startTestApp,
  type TestApp,
} from '../platform/testing/index.ts';
import { createWal, type WalModule } from '../wal/index.ts';
import { type CatalogModule, createCatalog } from './index.ts';
import type { Product } from './products/product-read.ts';

export type CatalogTestApp = TestApp & { catalog: CatalogModule; wal: WalModule };

/** The WAL (its EventBus) and the catalog on one context, as server.ts composes them. */
async function catalogModules(
  ctx: AppContext,
  identity: TestApp['identity'],
  out: { catalog?: CatalogModule; wal?: WalModule },
  options: CatalogOptions = {},
): Promise<MercatoModule[]> {
  out.wal = await createWal(ctx);
  out.catalog = await createCatalog(ctx, {
    events: out.wal.events,
    resolveTenant: identity.resolveTenant,
    ...options,
  });
  return [out.wal, out.catalog];
}

/** What createCatalog may be given besides its events and tenant resolver. */
export type CatalogOptions = { productCacheMaxChars?: number };

/** The app with the WAL and the catalog, on a database of its own. */
export async function startCatalogApp(
  env: Record<string, string> = {},
  options: CatalogOptions = {},
): Promise<CatalogTestApp> {
  const out: { catalog?: CatalogModule; wal?: WalModule } = {};
  const t = await startTestApp(env, {
    modules: (ctx, identity) => catalogModules(ctx, identity, out, options),
  });
  return Object.assign(t, { catalog: out.catalog!, wal: out.wal! });
}

/** Another process on the same PostgreSQL database, with its own catalog (and product cache). */
export async function startSecondCatalogProcess(databaseUrl: string): Promise<SecondProcess> {
  const out: { catalog?: CatalogModule; wal?: WalModule } = {};
  return startSecondProcess(databaseUrl, { modules: (ctx, identity) => catalogModules(ctx, identity, out) });
}

export type Shop = TestTenant & {
  staff: Record<string, string>;
  customer: Record<string, string>;
  /** An anonymous shopper's headers (X-Tenant). */
  anonymous: Record<string, string>;
};

/** A tenant with a staff user and a customer, and their Authorization headers. */
export async function createShop(t: TestApp, slug: string): Promise<Shop> {
  const tenant = await createTestTenant(t, slug);
  await addUser(t, tenant.id, `staff@${slug}.test`, 'staff');
  await addUser(t, tenant.id, `buyer@${slug}.test`, 'customer');
  return {
    ...tenant,
    staff: await bearer(t, slug, `staff@${slug}.test`),
    customer: await bearer(t, slug, `buyer@${slug}.test`),
    anonymous: { 'x-tenant': slug },
  };
}

let serial = 0;

/** A valid product body; fields override. */
export function productBody(fields: Record<string, unknown> = {}): Record<string, unknown> {
  serial += 1;
  return {
    title: `Linen Shirt ${serial}`,
    status: 'active',
    variants: [
      { sku: `SHIRT-${serial}-M`, options: { size: 'M' }, prices: { USD: 4900, EUR: 4500 } },
      { sku: `SHIRT-${serial}-L`, options: { size: 'L' }, prices: { USD: 4900, EUR: 4500 } },
    ],
    ...fields,
  };
}

/** Creates a product through the API (as the shop's staff) and returns it. */
export async function createProduct(
  t: TestApp,
  shop: Shop,
  fields: Record<string, unknown> = {},
): Promise<Product> {
  const response = await send(t.app, 'POST', '/api/v1/products', shop.staff, productBody(fields));
  if (response.statusCode !== 201) throw new Error(`create product: ${response.statusCode} ${response.body}`);
  return response.json<Product>();
}

/**
 * Makes the product's search document what indexing wrote before it read text as NFKC: the title
 * as typed (as the owner role; the search tables' RLS is not forced). Shoppers' words miss it.
 */
export async function makeDocumentPreNfkc(t: TestApp, productId: string): Promise<void> {
  await sql`update catalog.search_documents d set title = p.title,
      heading = setweight(to_tsvector('english', p.title), 'A'),
      document = setweight(to_tsvector('english', p.title), 'A')
    from catalog.products p where p.id = d.product_id and d.product_id = ${productId}`.execute(
    t.ctx.db.kysely,
  );
}

export type StoredEvent = { type: string; subject: string; data: Record<string, unknown> };

/** The events of the tenant's product-events namespace, oldest first. */
export async function productEvents(t: TestApp, tenantId: string): Promise<StoredEvent[]> {
  const rows = await withTenant(t.ctx.db.kysely, tenantId, async (trx) => {
    const { rows } = await sql<{ type: string; subject: string; payload: unknown }>`
      select headers->>'ce-type' as type, headers->>'ce-subject' as subject, payload
      from wal.messages where namespace = 'product-events' order by id`.execute(trx);
    return rows;
  });
  return rows.map((r) => ({
    type: r.type,
    subject: r.subject,
    data: (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as Record<string, unknown>,
  }));
}

/**
 * Runs take in a transaction that begin opens and that stays open, its locks held, until
 * release(): a writer mid-change, or a lock another path must wait for.
 */
export async function holdOpen<T>(
  begin: (body: (trx: T) => Promise<void>) => Promise<unknown>,
  take: (trx: T) => Promise<unknown>,
): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let taken!: () => void;
  const held = new Promise<void>((resolve) => {
    taken = resolve;
  });
  const done = begin(async (trx) => {
    await take(trx);
    taken();
    await released;
  });
  await Promise.race([held, done]);
  return {
    async release() {
      release();
      await done;
    },
  };
}

export { until } from '../platform/testing/index.ts';

export { send };
