/**
 * Part `reads` of `npm run bench:commerce`: GET /health/live beside the cached product read
 * GET /api/v1/products/{id} (anonymous shoppers with X-Tenant, rotating over a set of products),
 * same connections; then POST /api/v1/cart/items into guest carts (a rotating set made first).
 */
import { randomUUID } from 'node:crypto';
import { type Api, apiAt } from './api.ts';
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
  // The route measured is the cached read: each product is read once first (a cold read is a
  // few PostgreSQL queries; on a busy machine 1,000 of them would fill most of a short run).
  const shopper = apiAt(api.base);
  for (let i = 0; i < ids.length; i += 10) {
    await Promise.all(
      ids
        .slice(i, i + 10)
        .map((id) => shopper.must('GET', `/api/v1/products/${id}`, undefined, { 'x-tenant': TENANT })),
    );
  }
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

/** A guest cart (POST /api/v1/cart): its token, as given once in X-Cart-Token. */
async function newGuestCart(api: Api): Promise<string> {
  const created = await apiAt(api.base).call<{ token?: string }>(
    'POST',
    '/api/v1/cart',
    { currency: 'EUR' },
    { 'x-tenant': TENANT },
  );
  const token = created.headers.get('x-cart-token') ?? created.body.token;
  if (created.status !== 201 || !token) {
    throw new Error(`POST /api/v1/cart: ${created.status} ${JSON.stringify(created.body).slice(0, 300)}`);
  }
  return token;
}

export async function runCartAdds(
  api: Api,
  variantIds: string[],
): Promise<{ cart: LoadResult; carts: number }> {
  for (const variantId of variantIds) await stockVariant(api, variantId, 10_000_000);
  const tokens: string[] = [];
  for (let i = 0; i < CARTS; i++) tokens.push(await newGuestCart(api));
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
