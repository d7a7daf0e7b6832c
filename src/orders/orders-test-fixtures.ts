import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import {
  addUser,
  bearer,
  createShopWithStaff,
  type ShopWithStaff,
  send,
} from '../identity/users/user-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import type { Subscriber } from '../platform/events/index.ts';
import type { Role } from '../platform/http/index.ts';
import { startTestApp, type TestApp } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { createWal } from '../wal/index.ts';
import { createOrders, type NewOrder, type NewOrderLine, type Order, type OrdersModule } from './index.ts';

export type OrdersTestApp = TestApp & { orders: OrdersModule };

/**
 * The app with the WAL (its EventBus) and the orders module, on a database of its own; `subscribers`
 * are registered on the bus before the WAL starts.
 */
export async function startOrdersApp(
  env: Record<string, string> = {},
  subscribers: Subscriber[] = [],
): Promise<OrdersTestApp> {
  let orders: OrdersModule | undefined;
  const t = await startTestApp(env, {
    modules: async (ctx, identity) => {
      const wal = await createWal(ctx);
      for (const subscriber of subscribers) wal.events.subscribe(subscriber);
      orders = await createOrders(ctx, { events: wal.events, resolveTenant: identity.resolveTenant });
      return [wal, orders];
    },
  });
  return Object.assign(t, { orders: orders! });
}

export type Shop = ShopWithStaff;

export const createShop = createShopWithStaff;

export type TestUser = { id: string; headers: Record<string, string> };

let users = 0;
/** A new user of the shop (a customer unless named) and their Authorization header. */
export async function newUser(t: TestApp, shop: Shop, role: Role = 'customer'): Promise<TestUser> {
  users += 1;
  const email = `user${users}@${shop.slug}.test`;
  const user = await addUser(t, shop.id, email, role);
  return { id: user.id, headers: await bearer(t, shop.slug, email) };
}

/** A guest cart token as the cart hands them out, and the hash an order keeps of it. */
export function guestToken(): { token: string; hash: string } {
  const token = `ct_${randomBytes(32).toString('base64url')}`;
  return { token, hash: createHash('sha256').update(token).digest('hex') };
}

/** A line whose amounts add up (tax exclusive at 20 %). */
export function line(unitPrice = 1000, quantity = 1): NewOrderLine {
  const tax = Math.round((unitPrice * quantity * 2000) / 10000);
  return {
    variantId: uuidv7(),
    productId: uuidv7(),
    sku: `SKU-${randomBytes(4).toString('hex')}`,
    title: 'Shirt',
    variantTitle: 'M',
    quantity,
    unitPrice,
    tax,
    lineTotal: unitPrice * quantity + tax,
  };
}

/** A valid order input: a guest's unless customerId is given; totals computed from the lines. */
export function newOrder(fields: Partial<NewOrder> = {}): NewOrder {
  const lines = fields.lines ?? [line(1000, 2), line(250, 1)];
  const subtotal = lines.reduce((sum, l) => sum + l.unitPrice * l.quantity, 0);
  const tax = lines.reduce((sum, l) => sum + l.tax, 0);
  const shipping = fields.shippingOption?.price ?? 0;
  return {
    customerId: null,
    email: 'buyer@example.test',
    currency: 'EUR',
    lines,
    shippingAddress: null,
    billingAddress: null,
    shippingOption: null,
    totals: {
      subtotal,
      discount: 0,
      shipping,
      tax,
      total: subtotal + shipping + tax,
      taxRateBps: 2000,
      pricesIncludeTax: false,
    },
    cartId: uuidv7(),
    idempotencyScope: 'test',
    idempotencyKey: uuidv7(),
    requestHash: 'a'.repeat(64),
    correlationId: null,
    guestTokenHash: null,
    ...fields,
  };
}

/** Creates the order in a transaction of its own, as the saga would inside its step. */
export function placeOrder(t: OrdersTestApp, tenantId: string, input: NewOrder = newOrder()): Promise<Order> {
  return withTenant(t.ctx.db.kysely, tenantId, (trx) => t.orders.create(trx, tenantId, input));
}

/** The events of the tenant's order-events namespace, oldest first (type, subject, data). */
export async function orderEvents(t: TestApp, tenantId: string, subject?: string) {
  const rows = await withTenant(t.ctx.db.kysely, tenantId, async (trx) => {
    const { rows } = await sql<{ type: string; subject: string; payload: unknown }>`
      select headers->>'ce-type' as type, headers->>'ce-subject' as subject, payload
      from wal.messages where namespace = 'order-events' order by id`.execute(trx);
    return rows;
  });
  const parsed = rows.map((r) => ({
    type: r.type,
    subject: r.subject,
    data: (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as Record<string, unknown>,
  }));
  return subject ? parsed.filter((e) => e.subject === subject) : parsed;
}

export { until } from '../platform/testing/index.ts';
export { send };
