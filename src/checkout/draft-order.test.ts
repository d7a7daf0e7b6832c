import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { withSystem } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  BERLIN,
  type CheckoutTestApp,
  createStore,
  send,
  startCheckoutApp,
} from './checkout-test-fixtures.ts';

let t: CheckoutTestApp;
let shop: Awaited<ReturnType<typeof createStore>>;

beforeAll(async () => {
  t = await startCheckoutApp();
  shop = await createStore(t, 'draft-order-shop');
});
afterAll(() => t.close());

/** Every delete of a cart fails while fn runs (a fault of the database, injected in this file's own). */
async function whileCartDeletesFail<T>(fn: () => Promise<T>): Promise<T> {
  await withSystem(t.ctx.db.kysely, async (trx) => {
    await sql`create function public.refuse_cart_delete() returns trigger language plpgsql as $$
      begin raise exception 'cart deletes are refused'; end $$`.execute(trx);
    await sql`create trigger refuse_cart_delete before delete on cart.carts
      for each row execute function public.refuse_cart_delete()`.execute(trx);
  });
  try {
    return await fn();
  } finally {
    await withSystem(t.ctx.db.kysely, async (trx) => {
      await sql`drop trigger refuse_cart_delete on cart.carts`.execute(trx);
      await sql`drop function public.refuse_cart_delete()`.execute(trx);
    });
  }
}

describe('an order staff place from lines', () => {
  it('logs (with tenant and cart) a refused draft cart it could not delete, and answers the refusal', async () => {
    const warnings: { bindings: Record<string, unknown>; msg: string }[] = [];
    const child = t.ctx.logger.child.bind(t.ctx.logger);
    const spy = vi.spyOn(t.ctx.logger, 'child').mockImplementation(((bindings: Record<string, unknown>) => {
      const logger = child(bindings);
      if (bindings['module'] === 'cart') {
        vi.spyOn(logger, 'warn').mockImplementation(((obj: Record<string, unknown>, msg: string) => {
          warnings.push({ bindings: obj, msg });
        }) as never);
      }
      return logger;
    }) as never);
    try {
      const refused = await whileCartDeletesFail(() =>
        send(
          t.app,
          'POST',
          '/api/v1/orders',
          { ...shop.staff, 'idempotency-key': `draft-${uuidv7()}` },
          {
            // A variant the store does not have: the draft refuses the line.
            lines: [{ variantId: uuidv7(), quantity: 1 }],
            currency: 'EUR',
            shippingAddress: BERLIN,
            payment: { token: 'tok_visa' },
          },
        ),
      );
      expect(refused.statusCode, refused.body).toBeGreaterThanOrEqual(400);
      expect(refused.statusCode, refused.body).toBeLessThan(500);
    } finally {
      spy.mockRestore();
    }
    expect(warnings).toEqual([
      {
        bindings: expect.objectContaining({
          tenantId: shop.id,
          cartId: expect.any(String),
          err: expect.anything(),
        }),
        msg: expect.stringContaining('not deleted'),
      },
    ]);
  });
});
