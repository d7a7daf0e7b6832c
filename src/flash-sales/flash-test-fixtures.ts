import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { expect } from 'vitest';
import { createSellable, type Shop, type TestVariant } from '../cart/cart-test-fixtures.ts';
import type { CatalogModule } from '../catalog/module.ts';
import { startCheckoutApp } from '../checkout/checkout-test-fixtures.ts';
import { createAddressBook, signSessionTokens } from '../identity/index.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import type { OrdersModule } from '../orders/module.ts';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { WalModule } from '../wal/module.ts';
import type { FlashSalesDeps } from './deps.ts';
import type { FlashGate } from './gate.ts';
import { createMemoryGate } from './gate-memory.ts';
import type { FlashSalesModule } from './index.ts';
import type { FlashSalesDb } from './tables.ts';

export type FlashTestApp = Awaited<ReturnType<typeof startCheckoutApp>> & { flashSales: FlashSalesModule };

/** The whole app as the server composes it, with the flash-sales module at hand. */
export async function startFlashApp(env: Record<string, string> = {}): Promise<FlashTestApp> {
  const t = await startCheckoutApp(env);
  return Object.assign(t, {
    flashSales: t.modules.find((m) => m.name === 'flash-sales') as FlashSalesModule,
  });
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
