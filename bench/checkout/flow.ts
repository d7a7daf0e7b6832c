/**
 * Mercato's checkout over HTTP as a guest shopper (anonymous, X-Tenant): a cart, two items, the
 * shipping address, the shipping option, then `POST /api/v1/orders` paying with the test
 * provider's succeeding token. A checkout completed only when every call succeeded and the
 * order came back 201 with status `completed` (a 202 is an order still running after
 * MERCATO_CHECKOUT_INLINE_MS: not completed).
 */
import { randomUUID } from 'node:crypto';
import { TENANT } from '../commerce/setup.ts';
import { type Client, problemOf, type Reply } from './client.ts';
import type { Outcome } from './loop.ts';
import type { Shop } from './setup.ts';

/** The calls of one checkout, in order (the per-call figures follow it). */
export const CALLS = [
  'POST /api/v1/cart',
  'POST /api/v1/cart/items (first)',
  'POST /api/v1/cart/items (second)',
  'PUT /api/v1/cart/addresses',
  'PUT /api/v1/cart/shipping-option',
  'POST /api/v1/orders',
] as const;

export const ADDRESS = {
  recipient: 'Erika Mustermann',
  line1: 'Unter den Linden 1',
  city: 'Berlin',
  postalCode: '10117',
  country: 'DE',
};

/** A cart ready to check out (calls 1 to 5), or what went wrong. */
export type Prepared = { token?: string; calls: number[]; problem?: string };

export async function prepareCart(client: Client, shop: Shop, pair: [number, number]): Promise<Prepared> {
  const calls: number[] = [];
  const fail = (what: string, reply: Reply) => ({ calls, problem: `${what}: ${problemOf(reply)}` });
  const created = await client.send<{ token?: string }>(
    'POST',
    '/api/v1/cart',
    { currency: 'EUR' },
    { 'x-tenant': TENANT },
  );
  calls.push(created.ms);
  const token = created.body?.token;
  if (created.status !== 201 || !token) return fail(CALLS[0], created);
  const headers = { 'x-tenant': TENANT, 'x-cart-token': token };
  for (const [i, variant] of pair.entries()) {
    const added = await client.send(
      'POST',
      '/api/v1/cart/items',
      { variantId: shop.variantIds[variant], quantity: 1 },
      headers,
    );
    calls.push(added.ms);
    if (added.status !== 201) return fail(CALLS[1 + i]!, added);
  }
  const addressed = await client.send('PUT', '/api/v1/cart/addresses', { shipping: ADDRESS }, headers);
  calls.push(addressed.ms);
  if (addressed.status !== 200) return fail(CALLS[3], addressed);
  const shipped = await client.send(
    'PUT',
    '/api/v1/cart/shipping-option',
    { shippingOptionId: shop.shippingOptionId },
    headers,
  );
  calls.push(shipped.ms);
  if (shipped.status !== 200) return fail(CALLS[4], shipped);
  return { token, calls };
}

/** POST /api/v1/orders for the cart of `token`: completed only as 201 with status `completed`. */
export async function placeOrder(client: Client, token: string): Promise<Outcome> {
  const reply = await client.send<{ status?: string }>(
    'POST',
    '/api/v1/orders',
    { payment: { token: 'tok_visa' } },
    { 'x-tenant': TENANT, 'x-cart-token': token, 'idempotency-key': randomUUID() },
  );
  const ok = reply.status === 201 && reply.body?.status === 'completed';
  return ok ? { ok, ms: reply.ms } : { ok, ms: reply.ms, problem: `${CALLS[5]}: ${problemOf(reply)}` };
}

/** One whole checkout, each call timed. */
export async function checkout(client: Client, shop: Shop, pair: [number, number]): Promise<Outcome> {
  const started = performance.now();
  const prepared = await prepareCart(client, shop, pair);
  if (!prepared.token || prepared.problem) {
    return { ok: false, ms: performance.now() - started, problem: prepared.problem ?? 'no cart' };
  }
  const ordered = await placeOrder(client, prepared.token);
  return { ...ordered, ms: performance.now() - started, calls: [...prepared.calls, ordered.ms] };
}
