import type { LightMyRequestResponse } from 'fastify';
import type { CatalogModule } from '../catalog/index.ts';
import {
  addUser,
  bearer,
  createShopWithStaff,
  type ShopWithStaff,
  send,
} from '../identity/users/user-test-fixtures.ts';
import type { InventoryModule } from '../inventory/index.ts';
import { createMercatoModules } from '../modules.ts';
import type { MercatoModule } from '../platform/index.ts';
import { startTestApp, type TestApp } from '../platform/testing/index.ts';
import type { Cart } from './cart-view.ts';
import type { CartModule } from './index.ts';

export type CartTestApp = TestApp & { cart: CartModule; catalog: CatalogModule; inventory: InventoryModule };

/** The app with the WAL, catalog, inventory and cart modules, composed as the server does (src/modules.ts). */
export async function startCartApp(env: Record<string, string> = {}): Promise<CartTestApp> {
  let modules: MercatoModule[] = [];
  const t = await startTestApp(env, {
    modules: async (ctx, identity) => {
      modules = (await createMercatoModules(ctx, identity, ['wal', 'catalog', 'inventory', 'cart'])).modules;
      return modules;
    },
  });
  const named = <T>(name: string) => modules.find((m) => m.name === name) as T;
  return Object.assign(t, {
    cart: named<CartModule>('cart'),
    catalog: named<CatalogModule>('catalog'),
    inventory: named<InventoryModule>('inventory'),
  });
}

export type Shop = ShopWithStaff;

export const createShop = createShopWithStaff;

let customers = 0;
/** A new customer of the shop and their Authorization header. */
export async function newCustomer(t: TestApp, shop: Shop): Promise<Record<string, string>> {
  customers += 1;
  const email = `buyer${customers}@${shop.slug}.test`;
  await addUser(t, shop.id, email, 'customer');
  return bearer(t, shop.slug, email);
}

function expectStatus(response: LightMyRequestResponse, status: number, what: string) {
  if (response.statusCode !== status) throw new Error(`${what}: ${response.statusCode} ${response.body}`);
}

export type TestVariant = { id: string; sku: string; productId: string };

let skus = 0;
/**
 * An active product with one variant priced as given, and stock of it (through the catalog and
 * inventory routes, as staff would).
 */
export async function createSellable(
  t: TestApp,
  shop: Shop,
  options: {
    prices?: Record<string, number>;
    onHand?: number;
    allowBackorder?: boolean;
    status?: string;
  } = {},
): Promise<TestVariant> {
  skus += 1;
  const sku = `SKU-${skus}`;
  const created = await send(t.app, 'POST', '/api/v1/products', shop.staff, {
    title: `Product ${skus}`,
    status: options.status ?? 'active',
    variants: [{ sku, options: { size: 'M' }, prices: options.prices ?? { EUR: 1000 } }],
  });
  expectStatus(created, 201, 'create product');
  const product = created.json<{ id: string; variants: { id: string; sku: string }[] }>();
  const variant = { id: product.variants[0]!.id, sku, productId: product.id };
  await setStock(t, shop, variant, options.onHand ?? 100, options.allowBackorder ?? false);
  return variant;
}

/** Sets on hand (and backorders) of the variant, creating its stock item if the catalog's event has not yet. */
export async function setStock(
  t: TestApp,
  shop: Shop,
  variant: TestVariant,
  onHand: number,
  allowBackorder = false,
): Promise<void> {
  const created = await send(t.app, 'POST', '/api/v1/inventory', shop.staff, {
    variantId: variant.id,
    productId: variant.productId,
    onHand,
    allowBackorder,
  });
  if (created.statusCode === 201) return;
  expectStatus(created, 409, 'create stock');
  const list = await send(t.app, 'GET', `/api/v1/inventory?variantId=${variant.id}`, shop.staff);
  const item = list.json<{ items: { id: string }[] }>().items[0]!;
  expectStatus(
    await send(t.app, 'PUT', `/api/v1/inventory/${item.id}/stock`, shop.staff, {
      set: onHand,
      reason: 'count',
    }),
    200,
    'set stock',
  );
  expectStatus(
    await send(t.app, 'PUT', `/api/v1/inventory/${item.id}`, shop.staff, { allowBackorder }),
    200,
    'set backorders',
  );
}

/** Changes the variant's prices through the catalog. */
export async function reprice(t: TestApp, shop: Shop, variant: TestVariant, prices: Record<string, number>) {
  const response = await send(
    t.app,
    'PUT',
    `/api/v1/products/${variant.productId}/variants/${variant.id}`,
    shop.staff,
    { sku: variant.sku, options: { size: 'M' }, prices },
  );
  expectStatus(response, 200, 'reprice');
}

/** Sets the product's status through the catalog. */
export async function setStatus(t: TestApp, shop: Shop, variant: TestVariant, status: string) {
  const product = (await send(t.app, 'GET', `/api/v1/products/${variant.productId}`, shop.staff)).json<{
    title: string;
  }>();
  const response = await send(t.app, 'PUT', `/api/v1/products/${variant.productId}`, shop.staff, {
    title: product.title,
    status,
  });
  expectStatus(response, 200, 'set status');
}

/** A new guest cart of the shop: its token and the headers that name it. */
export async function newGuestCart(t: TestApp, shop: Shop, body: Record<string, unknown> = {}) {
  const response = await send(t.app, 'POST', '/api/v1/cart', { 'x-tenant': shop.slug }, body);
  expectStatus(response, 201, 'create guest cart');
  const token = response.json<{ token: string }>().token;
  return { token, headers: { 'x-tenant': shop.slug, 'x-cart-token': token } };
}

/** A cart as the API answers it (JSON: the view type of cart-view.ts). */
export type CartBody = Cart;

/** Adds to the cart the headers name; returns the answer. */
export function addItem(t: TestApp, headers: Record<string, string>, body: Record<string, unknown>) {
  return send(t.app, 'POST', '/api/v1/cart/items', headers, body);
}

export { send };
