import { setTimeout as sleep } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import { type Kysely, sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, expect } from 'vitest';
import { createSellable, createShop, type Shop, type TestVariant } from '../cart/cart-test-fixtures.ts';
import type { CatalogModule } from '../catalog/module.ts';
import { orderOf, startCheckoutApp } from '../checkout/checkout-test-fixtures.ts';
import { callServer } from '../cli/mercato-process.ts';
import { createAddressBook, signSessionTokens } from '../identity/index.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import type { OrdersModule } from '../orders/module.ts';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { type AppContext, loadConfig } from '../platform/index.ts';
import { testRedisUrl } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { WalModule } from '../wal/module.ts';
import { createBreakers } from './breakers.ts';
import type { FlashSalesDeps } from './deps.ts';
import type { FlashGate, UnitsBackFeed } from './gate.ts';
import { createMemoryGate } from './gate-memory.ts';
import { createRedisGate } from './gate-redis.ts';
import type { FlashSalesModule } from './index.ts';
import { createPaymentQueue } from './payment-queue.ts';
import { withSoldOutMemory } from './sold-out-memory.ts';
import type { FlashSalesDb } from './tables.ts';

export type FlashTestApp = Awaited<ReturnType<typeof startCheckoutApp>> & { flashSales: FlashSalesModule };

/** The whole app as the server composes it, with the flash-sales module at hand. */
export async function startFlashApp(env: Record<string, string> = {}): Promise<FlashTestApp> {
  const t = await startCheckoutApp(env);
  return Object.assign(t, {
    flashSales: t.modules.find((m) => m.name === 'flash-sales') as FlashSalesModule,
  });
}

/**
 * The app and a shop of its own, started before the tests of the file (or describe) that calls it
 * and closed after them; `use` receives both.
 */
export function withFlashShop(
  slug: string,
  use: (t: FlashTestApp, shop: Shop) => void,
  env: Record<string, string> = {},
): void {
  let app: FlashTestApp | undefined;
  beforeAll(async () => {
    app = await startFlashApp(env);
    use(app, await createShop(app, slug));
  });
  afterAll(() => app?.close());
}

/** A logger that says nothing: for the parts a test builds on its own. */
export const silent = pino({ level: 'silent' });

/**
 * The gate in process (embedded) and in Redis (production, when the tests have one): tests of the
 * gate's behaviour run against each. `env` puts the app's own gate in Redis, under a prefix of its own.
 */
export const GATES = [
  { gate: 'in-process', redis: undefined as string | undefined, env: {} as Record<string, string> },
  ...(testRedisUrl()
    ? [
        {
          gate: 'redis',
          redis: testRedisUrl(),
          env: { REDIS_URL: testRedisUrl()!, MERCATO_REDIS_PREFIX: `test-fs-${uuidv7()}:` },
        },
      ]
    : []),
];

/**
 * A gate of its own, holding nothing yet (another process's, a restarted one's, or one that misses
 * what the app's gate is told), with the sold-out memory: in Redis under `prefix` when `redis` is given.
 */
export async function freshGate(redis: string | undefined, prefix = `test-fs-${uuidv7()}:`) {
  const inner: FlashGate & UnitsBackFeed = redis
    ? await createRedisGate({ url: redis, prefix, commandTimeoutMs: 3000 })
    : createMemoryGate();
  return withSoldOutMemory(inner);
}

/** What the module's parts share, made from the app's modules: to build one part on its own (a gate of its own unless given). */
export function flashDeps(t: FlashTestApp, gate: FlashGate = createMemoryGate()): FlashSalesDeps {
  const named = <T>(name: string) => t.modules.find((m) => m.name === name) as T;
  return {
    events: named<WalModule>('wal').events,
    catalog: named<CatalogModule>('catalog'),
    inventory: t.inventory,
    orders: named<OrdersModule>('orders'),
    checkout: t.checkout,
    addresses: createAddressBook(t.identity.deps.db as never),
    ctx: t.ctx,
    db: t.ctx.db.kysely as FlashSalesDb,
    gate,
  };
}

export type Customer = { id: string; headers: Record<string, string> };

/**
 * n customers of the shop, each with a default shipping address in Berlin and a session, signed in
 * with tokens minted with the server's key (no argon2 login each): three statements in all.
 */
export async function bulkCustomers(
  t: FlashTestApp,
  shop: Shop,
  n: number,
  withAddress = true,
): Promise<Customer[]> {
  const users = Array.from({ length: n }, (_, i) => ({
    id: uuidv7(),
    email: `fs${i}-${uuidv7()}@${shop.slug}.test`,
  }));
  await withTenant(t.identity.deps.db, shop.id, async (trx) => {
    const rows = JSON.stringify(users);
    await sql`insert into identity.users (id, tenant_id, email, password_hash, name, role)
      select u.id, ${shop.id}::uuid, u.email, 'not-a-password-hash', 'Flash buyer', 'customer'
      from jsonb_to_recordset(${rows}::jsonb) as u(id uuid, email text)`.execute(trx);
    if (withAddress) {
      await sql`insert into identity.addresses (id, tenant_id, user_id, type, recipient, line1, city, postal_code, country, is_default)
        select gen_random_uuid(), ${shop.id}::uuid, u.id, 'SHIPPING', 'Erika Muster', 'Unter den Linden 1', 'Berlin', '10117', 'DE', true
        from jsonb_to_recordset(${rows}::jsonb) as u(id uuid)`.execute(trx);
    }
    await sql`insert into identity.refresh_tokens (id, tenant_id, user_id, family_id, token_hash, expires_at)
      select gen_random_uuid(), ${shop.id}::uuid, u.id, u.id, encode(sha256(convert_to(u.id::text || random()::text, 'UTF8')), 'hex'),
        now() + interval '1 day'
      from jsonb_to_recordset(${rows}::jsonb) as u(id uuid)`.execute(trx);
  });
  const tokens = await signSessionTokens(
    t.ctx,
    t.identity.deps.db,
    { id: shop.id, slug: shop.slug },
    users.map((u) => ({ userId: u.id, role: 'customer', sessionId: u.id })),
  );
  return users.map((u, i) => ({ id: u.id, headers: { authorization: `Bearer ${tokens[i]}` } }));
}

/** A sellable variant (EUR 10.00) with `onHand` in stock. */
export const saleVariant = (t: FlashTestApp, shop: Shop, onHand: number): Promise<TestVariant> =>
  createSellable(t, shop, { prices: { EUR: 1000 }, onHand });

/** A campaign live now (started a second ago, ending in an hour) unless times are given. */
export async function createSale(
  t: FlashTestApp,
  shop: Shop,
  variant: TestVariant,
  body: Record<string, unknown> = {},
): Promise<{ id: string; units: number } & Record<string, unknown>> {
  const response = await send(t.app, 'POST', '/api/v1/flash-sales', shop.staff, {
    name: 'Midnight drop',
    variantId: variant.id,
    units: 10,
    salePrice: 500,
    currency: 'EUR',
    startsAt: new Date(Date.now() - 1000).toISOString(),
    endsAt: new Date(Date.now() + 3_600_000).toISOString(),
    ...body,
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json();
}

let attempts = 0;
/** One admission attempt; a fresh Idempotency-Key unless given. */
export function attempt(
  t: FlashTestApp,
  saleId: string,
  customer: Customer,
  body: Record<string, unknown> = {},
  key = `attempt-${++attempts}`,
): Promise<LightMyRequestResponse> {
  return send(
    t.app,
    'POST',
    `/api/v1/flash-sales/${saleId}/orders`,
    { ...customer.headers, 'idempotency-key': key },
    body,
  );
}

/** The campaign as staff read it. */
export async function saleOf(t: FlashTestApp, shop: Shop, id: string) {
  const response = await send(t.app, 'GET', `/api/v1/flash-sales/${id}`, shop.staff);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<{
    status: string;
    admitted: number;
    sold: number;
    released: number;
    remaining: number;
    units: number;
  }>();
}

/** An order's admission as stored: its status and why it was released (read past row-level security). */
export const admissionOf = (t: FlashTestApp, orderId: string) =>
  withSystem(t.ctx.db.kysely, async (trx) => {
    const { rows } = await sql<{ status: string; release_reason: string | null }>`
      select status, release_reason from flash_sales.admissions where order_id = ${orderId}`.execute(trx);
    return rows[0];
  });

/** The admission's payment window closes unpaid: the app's sweep fails its order and gives its unit back. */
export async function closeWindowUnpaid(t: FlashTestApp, orderId: string): Promise<void> {
  await withSystem(t.ctx.db.kysely, (trx) =>
    sql`update flash_sales.admissions set pay_by = now() - interval '1 second' where order_id = ${orderId}`.execute(
      trx,
    ),
  );
  await t.flashSales.tick();
  expect(await admissionOf(t, orderId)).toMatchObject({ status: 'released', release_reason: 'timeout' });
}

/**
 * For a real server's tests (PostgreSQL, `owner` its database's owner): n customers of the demo
 * tenant, each with a default shipping address, signed in with tokens minted with the server's key
 * (no argon2 login each). Emails are `<emailPrefix>-<id>@demo.test`.
 */
export async function demoBuyers(
  owner: Kysely<unknown>,
  databaseUrl: string,
  n: number,
  emailPrefix: string,
) {
  const tenant = await withSystem(owner, async (trx) => {
    const { rows } = await sql<{
      id: string;
      slug: string;
    }>`select id, slug from identity.tenants where slug = 'demo'`.execute(trx);
    return rows[0]!;
  });
  const users = Array.from({ length: n }, () => uuidv7());
  await withSystem(owner, async (trx) => {
    const rows = JSON.stringify(users.map((id) => ({ id })));
    await sql`insert into identity.users (id, tenant_id, email, password_hash, name, role)
      select u.id, ${tenant.id}::uuid, ${emailPrefix} || '-' || u.id || '@demo.test', 'x', 'Buyer', 'customer'
      from jsonb_to_recordset(${rows}::jsonb) as u(id uuid)`.execute(trx);
    await sql`insert into identity.addresses (id, tenant_id, user_id, type, recipient, line1, city, postal_code, country, is_default)
      select gen_random_uuid(), ${tenant.id}::uuid, u.id, 'SHIPPING', 'Erika Muster', 'Unter den Linden 1', 'Berlin', '10117', 'DE', true
      from jsonb_to_recordset(${rows}::jsonb) as u(id uuid)`.execute(trx);
    await sql`insert into identity.refresh_tokens (id, tenant_id, user_id, family_id, token_hash, expires_at)
      select gen_random_uuid(), ${tenant.id}::uuid, u.id, u.id, md5(u.id::text) || md5(random()::text), now() + interval '1 day'
      from jsonb_to_recordset(${rows}::jsonb) as u(id uuid)`.execute(trx);
  });
  const ctx = { config: loadConfig({ DATABASE_URL: databaseUrl }) } as AppContext;
  const tokens = await signSessionTokens(
    ctx,
    owner as never,
    tenant,
    users.map((id) => ({ userId: id, role: 'customer', sessionId: id })),
  );
  return { tenant, users, tokens };
}

/**
 * For a real server's tests: a product of one variant (its SKU `<sku>-<uuid>`, EUR 10.00) with
 * `onHand` units in stock, and a sale of `units` of it live now for an hour. Answers the variant
 * and the sale's id.
 */
export async function serverSale(
  base: string,
  staff: Record<string, string>,
  o: { title: string; sku: string; onHand: number; name: string; units: number },
) {
  const product = await callServer(base, 'POST', '/api/v1/products', staff, {
    title: o.title,
    status: 'active',
    variants: [{ sku: `${o.sku}-${uuidv7()}`, options: { size: 'M' }, prices: { EUR: 1000 } }],
  });
  expect(product.status, JSON.stringify(product.body)).toBe(201);
  const variant = product.body.variants[0] as { id: string };
  const stock = await callServer(base, 'POST', '/api/v1/inventory', staff, {
    variantId: variant.id,
    productId: product.body.id,
    onHand: o.onHand,
  });
  expect([201, 409], JSON.stringify(stock.body)).toContain(stock.status);
  if (stock.status === 409) {
    const list = await callServer(base, 'GET', `/api/v1/inventory?variantId=${variant.id}`, staff);
    const set = await callServer(base, 'PUT', `/api/v1/inventory/${list.body.items[0].id}/stock`, staff, {
      set: o.onHand,
      reason: 'count',
    });
    expect(set.status).toBe(200);
  }
  const sale = await callServer(base, 'POST', '/api/v1/flash-sales', staff, {
    name: o.name,
    variantId: variant.id,
    units: o.units,
    salePrice: 500,
    currency: 'EUR',
    startsAt: new Date(Date.now() - 1000).toISOString(),
    endsAt: new Date(Date.now() + 3_600_000).toISOString(),
  });
  expect(sale.status, JSON.stringify(sale.body)).toBe(201);
  return { variant, saleId: sale.body.id as string };
}

/**
 * A payment queue of the test's own (the app's stopped) kicked every 250 ms until `orderId` is no
 * longer `created`, at most `rounds` times, then closed.
 */
export async function runQueueUntilDone(
  t: FlashTestApp,
  shop: Shop,
  orderId: string,
  rounds: number,
  options?: { tenantsPerRound?: number },
): Promise<void> {
  const queue = createPaymentQueue(flashDeps(t), createBreakers(), silent, options);
  try {
    for (let i = 0; i < rounds && (await orderOf(t, shop, orderId)).status === 'created'; i++) {
      queue.kick();
      await sleep(250);
    }
  } finally {
    await queue.close();
  }
}
