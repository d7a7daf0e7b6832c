/**
 * Part `reads` of `npm run bench:commerce`: GET /health/live beside the cached product read
 * GET /api/v1/products/{id} (anonymous shoppers with X-Tenant, rotating over a set of products),
 * same connections; then POST /api/v1/cart/items into guest carts (a rotating set made first).
 */
import { randomUUID } from 'node:crypto';
import type { Api } from './api.ts';
import { stockVariant } from './hot-sku.ts';
import { type LoadResult, measure, rotate } from './load.ts';
import { DURATION, TENANT, WARMUP } from './setup.ts';

export const READ_CONNECTIONS = 50;
export const CART_CONNECTIONS = 16;
/** Guest carts the cart load rotates over, and the variants it adds (each stocked first). */
const CARTS = 500;

export type ReadRows = { live: LoadResult; product: LoadResult; products: number };

export async function runProductReads(api: Api, productIds: string[]): Promise<ReadRows> {
  const ids = productIds.slice(0, 1000);
  const live = await measure({
    name: 'GET /health/live',
    base: api.base,
    connections: READ_CONNECTIONS,
    duration: DURATION,
    warmup: WARMUP,
    next: () => ({ path: '/health/live' }),
  });
  const next = rotate(ids.map((id) => `/api/v1/products/${id}`));
  const product = await measure({
    name: 'GET /api/v1/products/{id} (anonymous, X-Tenant)',
    base: api.base,
    connections: READ_CONNECTIONS,
    duration: DURATION,
    warmup: WARMUP,
    next: (i) => ({ path: next(i), headers: { 'x-tenant': TENANT } }),
  });
  return { live, product, products: ids.length };
}

type CartAnswer = { id?: string; token?: string; cartToken?: string; cart?: { id: string; token?: string } };

/** A guest cart: its token, as the cart answers it on creation. */
async function newGuestCart(api: Api, variantId: string): Promise<string> {
  const shopper = apiAsShopper(api);
  const created = await shopper.call<CartAnswer>(
    'POST',
    '/api/v1/cart/items',
    { variantId, quantity: 1 },
    { 'x-tenant': TENANT, 'idempotency-key': randomUUID() },
  );
  if (created.status >= 300) {
    throw new Error(`POST /api/v1/cart/items (new cart): ${created.status} ${JSON.stringify(created.body)}`);
  }
  const token =
    created.headers.get('x-cart-token') ??
    created.body.cartToken ??
    created.body.token ??
    created.body.cart?.token;
  if (!token) throw new Error(`no cart token in ${JSON.stringify(created.body).slice(0, 300)}`);
  return token;
}

const apiAsShopper = (api: Api): Api => ({ ...api, token: undefined }) as Api;

export async function runCartAdds(
  api: Api,
  variantIds: string[],
): Promise<{ cart: LoadResult; carts: number }> {
  for (const variantId of variantIds) await stockVariant(api, variantId, 10_000_000);
  const tokens: string[] = [];
  for (let i = 0; i < CARTS; i++) tokens.push(await newGuestCart(api, variantIds[i % variantIds.length]!));
  const cart = rotate(tokens);
  const variant = rotate(variantIds);
  const cartLoad = await measure({
    name: 'POST /api/v1/cart/items (guest carts)',
    base: api.base,
    connections: CART_CONNECTIONS,
    duration: DURATION,
    warmup: WARMUP,
    next: (i) => ({
      method: 'POST',
      path: '/api/v1/cart/items',
      headers: {
        'content-type': 'application/json',
        'x-tenant': TENANT,
        'x-cart-token': cart(i),
        'idempotency-key': randomUUID(),
      },
      // A rotating variant per cart, so lines grow by quantity as well as in number.
      body: JSON.stringify({ variantId: variant(Math.floor(i / 7)), quantity: 1 }),
    }),
  });
  return { cart: cartLoad, carts: tokens.length };
}
