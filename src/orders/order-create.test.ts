import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../platform/db/index.ts';
import { testDatabaseKind } from '../platform/testing/index.ts';
import {
  createShop,
  line,
  newOrder,
  newUser,
  type OrdersTestApp,
  orderEvents,
  placeOrder,
  type Shop,
  startOrdersApp,
} from './orders-test-fixtures.ts';

let t: OrdersTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startOrdersApp();
  shop = await createShop(t, 'numbers');
});
afterAll(() => t.close());

/** The error fn throws, or undefined. */
async function errorOf(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('order numbers', () => {
  it(`gives 50 concurrent creations in one tenant the numbers 1001 to 1050, each once (${testDatabaseKind()})`, async () => {
    const created = await Promise.all(Array.from({ length: 50 }, () => placeOrder(t, shop.id)));
    const numbers = created.map((o) => o.number).sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 50 }, (_, i) => 1001 + i));
    expect(new Set(created.map((o) => o.name)).size).toBe(50);
    expect(created.find((o) => o.number === 1001)!.name).toBe('#1001');
  });

  it('numbers each tenant on its own, from 1001', async () => {
    const [a, b] = [await createShop(t, 'numbers-a'), await createShop(t, 'numbers-b')];
    const [a1, b1, a2] = [await placeOrder(t, a.id), await placeOrder(t, b.id), await placeOrder(t, a.id)];
    expect([a1.number, a2.number, b1.number]).toEqual([1001, 1002, 1001]);
  });

  it('gives the number of a creation that rolled back to the next one (no gap)', async () => {
    const shop = await createShop(t, 'numbers-rollback');
    await placeOrder(t, shop.id);
    const rolledBack = await errorOf(() =>
      withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
        const order = await t.orders.create(trx, shop.id, newOrder());
        expect(order.number).toBe(1002);
        throw new Error('the saga step failed after the insert');
      }),
    );
    expect(String(rolledBack)).toContain('saga step failed');
    expect((await placeOrder(t, shop.id)).number).toBe(1002);
    const events = await orderEvents(t, shop.id);
    expect(events.map((e) => (e.data as { number: number }).number)).toEqual([1001, 1002]);
  });

  it('hands 40 concurrent takeNumber calls the next 40 numbers, each once, and create uses the number it is given', async () => {
    const shop = await createShop(t, 'numbers-taken');
    await placeOrder(t, shop.id);
    const numbers = await Promise.all(Array.from({ length: 40 }, () => t.orders.takeNumber(shop.id)));
    expect([...numbers].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => 1002 + i));
    const order = await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
      t.orders.create(trx, shop.id, newOrder(), undefined, numbers[7]),
    );
    expect(order.number).toBe(numbers[7]);
    // The counter moved past the numbers handed out: the next creation does not reuse one.
    expect((await placeOrder(t, shop.id)).number).toBe(1042);
  });
});

describe('create', () => {
  it('stores the order as given, in status created with one history entry, and answers it as get does', async () => {
    const customer = await newUser(t, shop);
    const address = {
      recipient: 'Ada Lovelace',
      line1: '1 Main St',
      line2: null,
      city: 'London',
      region: null,
      postalCode: 'N1 9GU',
      country: 'GB',
      phone: null,
      addressId: null,
    };
    const lines = [line(1999, 3), line(500, 1)];
    const input = newOrder({
      customerId: customer.id,
      lines,
      shippingAddress: address,
      billingAddress: address,
      shippingOption: { id: 'opt-1', name: 'Standard', price: 495 },
      correlationId: 'corr-1',
      actor: `user:${customer.id}`,
    });
    const order = await placeOrder(t, shop.id, input);
    expect(order).toMatchObject({
      customerId: customer.id,
      status: 'created',
      paymentStatus: 'not_paid',
      currency: 'EUR',
      itemCount: 4,
      shippingAddress: address,
      shippingOption: { id: 'opt-1', name: 'Standard', price: 495 },
      totals: input.totals,
      cartId: input.cartId,
      correlationId: 'corr-1',
      failure: null,
      cancelReason: null,
      completedAt: null,
      cancelledAt: null,
    });
    expect(order.totals.total).toBe(1999 * 3 + 500 + 495 + order.totals.tax);
    expect(order.lines.map(({ id: _id, ...rest }) => rest)).toEqual(lines);
    expect(order.history).toEqual([
      {
        id: expect.any(String),
        from: null,
        to: 'created',
        actor: `user:${customer.id}`,
        reason: null,
        at: expect.any(String),
      },
    ]);
    expect(await t.orders.getOrder(shop.id, order.id)).toEqual(order);
    expect(order).not.toHaveProperty('guestTokenHash');
    expect(order).not.toHaveProperty('idempotencyScope');
  });

  it('finds the order by its idempotency scope and key, with its request hash', async () => {
    const input = newOrder({
      idempotencyScope: 'user:42',
      idempotencyKey: 'k-1',
      requestHash: 'h'.repeat(64),
    });
    const order = await placeOrder(t, shop.id, input);
    const found = await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
      t.orders.findByIdempotencyKey(trx, shop.id, 'user:42', 'k-1'),
    );
    expect(found).toEqual({ ...order, requestHash: 'h'.repeat(64) });
    const other = await createShop(t, 'numbers-idem');
    const elsewhere = await withTenant(t.ctx.db.kysely, other.id, (trx) =>
      t.orders.findByIdempotencyKey(trx, other.id, 'user:42', 'k-1'),
    );
    expect(elsewhere).toBeUndefined();
    // Another tenant may use the same scope and key.
    expect((await placeOrder(t, other.id, input)).number).toBe(1001);
  });

  it("refuses a second order under the same scope and key with PostgreSQL's unique violation, publishing nothing", async () => {
    const input = newOrder({ idempotencyScope: 'user:43', idempotencyKey: 'k-2' });
    await placeOrder(t, shop.id, input);
    const before = (await orderEvents(t, shop.id)).length;
    const error = await errorOf(() => placeOrder(t, shop.id, { ...input, cartId: null }));
    // The saga tells this from other failures by its code, and replays the first request's order.
    expect(error).toMatchObject({ code: '23505' });
    expect((await orderEvents(t, shop.id)).length).toBe(before);
  });

  it('refuses lines and totals that do not add up, naming every failing field', async () => {
    const bad = newOrder();
    const cases: Array<[Partial<typeof bad>, string[]]> = [
      [{ lines: [] }, ['/lines']],
      [{ lines: Array.from({ length: 101 }, () => line()) }, ['/lines']],
      [{ currency: 'eur' }, ['/currency']],
      [{ lines: [{ ...line(), quantity: 0 }] }, ['/lines/0/quantity']],
      [{ lines: [{ ...line(), unitPrice: -1 }] }, ['/lines/0/unitPrice']],
      [{ lines: [{ ...line(), lineTotal: 1 }] }, ['/lines/0/lineTotal']],
      [
        { totals: { ...bad.totals, subtotal: bad.totals.subtotal + 1 } },
        ['/totals/subtotal', '/totals/total'],
      ],
      [{ totals: { ...bad.totals, total: bad.totals.total - 1 } }, ['/totals/total']],
      [{ totals: { ...bad.totals, tax: 0 } }, ['/totals/tax', '/totals/total']],
      [{ guestTokenHash: 'not-a-hash', customerId: 'nope' }, ['/customerId', '/guestTokenHash']],
      [{ idempotencyKey: '' }, ['/idempotencyKey']],
    ];
    for (const [fields, pointers] of cases) {
      const error = await errorOf(() => placeOrder(t, shop.id, { ...bad, ...fields }));
      expect(error, JSON.stringify(fields).slice(0, 80)).toMatchObject({
        code: 'VALIDATION_FAILED',
        status: 400,
      });
      const named = (error as { extras: { errors: { pointer: string }[] } }).extras.errors.map(
        (e) => e.pointer,
      );
      expect(named.sort(), JSON.stringify(fields).slice(0, 80)).toEqual(pointers.sort());
    }
  });

  it('takes prices that include tax: the total does not add the tax again', async () => {
    const l = { ...line(1200, 1), tax: 200, lineTotal: 1200 };
    const input = newOrder({
      lines: [l],
      totals: {
        subtotal: 1200,
        discount: 0,
        shipping: 0,
        tax: 200,
        total: 1200,
        taxRateBps: 2000,
        pricesIncludeTax: true,
      },
    });
    expect((await placeOrder(t, shop.id, input)).totals.total).toBe(1200);
  });

  it("keeps each tenant's orders from every other, even for a query without a tenant filter", async () => {
    const a = await createShop(t, 'numbers-rls-a');
    const b = await createShop(t, 'numbers-rls-b');
    const order = await placeOrder(t, a.id);
    await placeOrder(t, b.id);
    const seen = await withTenant(t.ctx.db.kysely, b.id, async (trx) => {
      const orders = await sql<{ id: string }>`select id from orders.orders`.execute(trx);
      const lines = await sql<{
        id: string;
      }>`select id from orders.lines where order_id = ${order.id}`.execute(trx);
      const history = await sql<{
        id: string;
      }>`select id from orders.history where order_id = ${order.id}`.execute(trx);
      return { orders: orders.rows.length, lines: lines.rows.length, history: history.rows.length };
    });
    expect(seen).toEqual({ orders: 1, lines: 0, history: 0 });
    expect(await t.orders.getOrder(b.id, order.id)).toBeUndefined();
    expect(await t.orders.getOrder(a.id, 'not-a-uuid')).toBeUndefined();
  });
});
