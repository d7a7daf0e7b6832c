import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Order } from '../orders/index.ts';
import { withSystem } from '../platform/db/index.ts';
import {
  type CheckoutTestApp,
  createStore,
  product,
  readyCart,
  send,
  startCheckoutApp,
} from './checkout-test-fixtures.ts';

let t: CheckoutTestApp;
let shop: Awaited<ReturnType<typeof createStore>>;

beforeAll(async () => {
  t = await startCheckoutApp();
  shop = await createStore(t, 'fingerprint-shop');
});
afterAll(() => t.close());

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const body = { payment: { token: 'tok_visa', provider: 'test' }, email: 'ada@example.com' };
/** The same body, its keys in another order at every level. */
const reordered = { email: 'ada@example.com', payment: { provider: 'test', token: 'tok_visa' } };

const placeWith = (headers: Record<string, string>, key: string, payload: unknown) =>
  send(t.app, 'POST', '/api/v1/orders', { ...headers, 'idempotency-key': key }, payload);
const storedHash = (key: string) =>
  withSystem(t.ctx.db.kysely, async (trx) => {
    const { rows } = await sql<{ request_hash: string }>`
      select request_hash from orders.orders where idempotency_key = ${key}`.execute(trx);
    return rows[0]?.request_hash;
  });

describe('the Idempotency-Key of POST /orders', () => {
  it('finds the same order when the same body comes back with its keys in another order', async () => {
    const cart = await readyCart(t, shop, [{ variant: await product(t, shop), quantity: 1 }]);
    const first = await placeWith(cart, 'reordered-order', body);
    expect(first.statusCode, first.body).toBe(201);
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(body));
    const again = await placeWith(cart, 'reordered-order', reordered);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json<Order>().id).toBe(first.json<Order>().id);
    const changed = await placeWith(cart, 'reordered-order', { ...reordered, email: 'grace@example.com' });
    expect(changed.statusCode).toBe(409);
    expect(changed.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
    // The hash is of the body with its keys sorted.
    expect(await storedHash('reordered-order')).toBe(
      sha256('{"email":"ada@example.com","payment":{"provider":"test","token":"tok_visa"}}'),
    );
  });

  it('still finds an order whose hash an earlier release stored (of the body as sent)', async () => {
    const cart = await readyCart(t, shop, [{ variant: await product(t, shop), quantity: 1 }]);
    const first = await placeWith(cart, 'order-before-upgrade', body);
    expect(first.statusCode, first.body).toBe(201);
    const legacy = sha256(JSON.stringify(body));
    expect(legacy).not.toBe(await storedHash('order-before-upgrade'));
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update orders.orders set request_hash = ${legacy} where idempotency_key = 'order-before-upgrade'`.execute(
        trx,
      ),
    );
    const again = await placeWith(cart, 'order-before-upgrade', body);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json<Order>().id).toBe(first.json<Order>().id);
    const changed = await placeWith(cart, 'order-before-upgrade', { ...body, email: 'grace@example.com' });
    expect(changed.statusCode).toBe(409);
    expect(changed.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });
});
