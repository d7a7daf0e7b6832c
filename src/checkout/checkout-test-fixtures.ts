import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import {
  createSellable,
  createShop,
  newCustomer,
  newGuestCart,
  type Shop,
  type TestVariant,
} from '../cart/cart-test-fixtures.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import type { InventoryModule } from '../inventory/index.ts';
import { createMercatoModules } from '../modules.ts';
import type { Order } from '../orders/index.ts';
import type { PaymentsModule } from '../payments/index.ts';
import type { MercatoModule } from '../platform/index.ts';
import { startTestApp, type TestApp, until } from '../platform/testing/index.ts';
import type { CheckoutModule } from './index.ts';

export type CheckoutTestApp = TestApp & {
  /** Every module after identity, as src/modules.ts made them. */
  modules: MercatoModule[];
  checkout: CheckoutModule;
  payments: PaymentsModule;
  inventory: InventoryModule;
};

/** The whole app, composed as the server composes it (src/modules.ts). */
export async function startCheckoutApp(env: Record<string, string> = {}): Promise<CheckoutTestApp> {
  let modules: MercatoModule[] = [];
  const t = await startTestApp(env, {
    modules: async (ctx, identity) => {
      modules = (await createMercatoModules(ctx, identity)).modules;
      return modules;
    },
  });
  const named = <T>(name: string) => modules.find((m) => m.name === name) as T;
  return Object.assign(t, {
    modules,
    checkout: named<CheckoutModule>('checkout'),
    payments: named<PaymentsModule>('payments'),
    inventory: named<InventoryModule>('inventory'),
  });
}

export const BERLIN = {
  recipient: 'Erika Muster',
  line1: 'Unter den Linden 1',
  city: 'Berlin',
  postalCode: '10117',
  country: 'DE',
};

/** A shop that sells to Germany: staff, a shipping option (EUR 4.90) and 19% VAT. */
export async function createStore(t: TestApp, slug: string): Promise<Shop & { shippingOptionId: string }> {
  const shop = await createShop(t, slug);
  const option = await send(t.app, 'POST', '/api/v1/shipping-options', shop.staff, {
    name: 'DHL',
    countries: ['DE'],
    prices: { EUR: 490 },
  });
  expect(option.statusCode, option.body).toBe(201);
  const tax = await send(t.app, 'POST', '/api/v1/tax-rates', shop.staff, {
    country: 'DE',
    rateBps: 1900,
    name: 'MwSt',
  });
  expect(tax.statusCode, tax.body).toBe(201);
  return { ...shop, shippingOptionId: option.json<{ id: string }>().id };
}

/** A variant of the store priced EUR 10.00 with `onHand` in stock. */
export const product = (t: TestApp, shop: Shop, onHand = 100): Promise<TestVariant> =>
  createSellable(t, shop, { prices: { EUR: 1000 }, onHand });

/**
 * A cart ready to check out: the lines added, shipped to Berlin with the store's option. With
 * `headers` the shopper's (a customer's Authorization), else a new guest cart; returns the
 * headers that name the cart.
 */
export async function readyCart(
  t: TestApp,
  shop: Shop & { shippingOptionId: string },
  lines: { variant: TestVariant; quantity: number }[],
  headers?: Record<string, string>,
): Promise<Record<string, string>> {
  const h = headers ?? (await newGuestCart(t, shop)).headers;
  for (const { variant, quantity } of lines) {
    const added = await send(t.app, 'POST', '/api/v1/cart/items', h, { variantId: variant.id, quantity });
    expect(added.statusCode, added.body).toBeLessThan(300);
  }
  const addressed = await send(t.app, 'PUT', '/api/v1/cart/addresses', h, { shipping: BERLIN });
  expect(addressed.statusCode, addressed.body).toBe(200);
  const shipping = await send(t.app, 'PUT', '/api/v1/cart/shipping-option', h, {
    shippingOptionId: shop.shippingOptionId,
  });
  expect(shipping.statusCode, shipping.body).toBe(200);
  return h;
}

let keys = 0;
/** POST /orders for the cart the headers name, paying with `token`. */
export function placeOrder(
  t: TestApp,
  headers: Record<string, string>,
  token = 'tok_visa',
  key = `checkout-${++keys}-${Date.now()}`,
  body: Record<string, unknown> = {},
): Promise<LightMyRequestResponse> {
  return send(
    t.app,
    'POST',
    '/api/v1/orders',
    { ...headers, 'idempotency-key': key },
    {
      payment: { token },
      ...body,
    },
  );
}

/** A new customer's order of one unit of a new product (3 in stock), completed by its checkout (201). */
export async function completedOrder(t: TestApp, shop: Shop & { shippingOptionId: string }) {
  const item = await product(t, shop, 3);
  const customer = await newCustomer(t, shop);
  await readyCart(t, shop, [{ variant: item, quantity: 1 }], customer);
  const placed = await placeOrder(t, customer);
  expect(placed.statusCode, placed.body).toBe(201);
  return { item, customer, order: placed.json<Order>() };
}

/** The order as staff read it. */
export async function orderOf(t: TestApp, shop: Shop, orderId: string): Promise<Order> {
  const response = await send(t.app, 'GET', `/api/v1/orders/${orderId}`, shop.staff);
  expect(response.statusCode, response.body).toBe(200);
  return response.json<Order>();
}

/** Waits until the order is in one of the statuses; returns it. */
export async function settled(
  t: TestApp,
  shop: Shop,
  orderId: string,
  statuses = ['completed', 'failed', 'cancelled'],
) {
  let order: Order | undefined;
  await until(
    async () => {
      order = await orderOf(t, shop, orderId);
      return statuses.includes(order.status);
    },
    `order ${orderId} in ${statuses.join(' or ')}`,
  );
  return order!;
}

/** The variant's stock item (summed as one location holds it). */
export async function stockOf(t: TestApp, shop: Shop, variant: TestVariant) {
  const list = await send(t.app, 'GET', `/api/v1/inventory?variantId=${variant.id}`, shop.staff);
  expect(list.statusCode, list.body).toBe(200);
  return list.json<{ items: { id: string; onHand: number; reserved: number; available: number }[] }>()
    .items[0]!;
}

/**
 * The provider confirms the order's pending authorization: the test provider settles its charge
 * as authorized and its signed webhook is delivered (2xx).
 */
export async function confirmPending(t: CheckoutTestApp, tenantId: string, orderId: string): Promise<void> {
  const { charges } = await t.payments.testProvider.ledger(tenantId);
  const charge = charges.find((c) => c.idempotencyKey.includes(orderId));
  expect(charge, `a charge of order ${orderId}`).toBeDefined();
  const webhook = await t.payments.testProvider.settlePending(charge!.id, 'authorized');
  const delivered = await t.app.inject({
    method: 'POST',
    url: '/api/v1/payments/webhooks/test',
    headers: { ...webhook.headers, 'content-type': 'application/json' },
    payload: webhook.body,
  });
  expect(delivered.statusCode, delivered.body).toBeLessThan(300);
}

export { send, until };
