import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { orderOf, settled, stockOf } from '../checkout/checkout-test-fixtures.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { until } from '../platform/testing/index.ts';
import {
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  saleOf,
  saleVariant,
  startFlashApp,
} from './flash-test-fixtures.ts';

let t: FlashTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startFlashApp();
  shop = await createShop(t, 'fs-lifecycle');
});
afterAll(() => t?.close());

const later = (ms: number) => new Date(Date.now() + ms).toISOString();

/** The sale's lifecycle events in order-events, oldest first. */
async function saleEvents(id: string): Promise<string[]> {
  return withSystem(t.ctx.db.kysely, async (trx) => {
    const { rows } = await sql<{ type: string }>`
      select headers->>'ce-type' as type from wal.messages
      where tenant_id = ${shop.id} and namespace = 'order-events' and headers->>'ce-subject' = ${id}
        and headers->>'ce-type' like 'mercato.flash-sale.%'
      order by created_at, id`.execute(trx);
    return rows.map((r) => r.type);
  });
}

/** Moves the sale's clock: starts_at and ends_at shifted (time passing, as the lifecycle sees it). */
const shift = (id: string, column: 'starts_at' | 'ends_at', to: string) =>
  withSystem(t.ctx.db.kysely, (trx) =>
    sql`update flash_sales.campaigns set ${sql.ref(column)} = ${to}::timestamptz where id = ${id}`.execute(
      trx,
    ),
  );

describe('the life of a flash sale', () => {
  it('announces started and sold-out, and at its end gives the unsold pool back to stock', async () => {
    const variant = await saleVariant(t, shop, 20);
    const sale = await createSale(t, shop, variant, { units: 3, startsAt: later(60_000) });
    await t.flashSales.tick();
    expect(await saleEvents(sale.id)).toEqual([]);
    await shift(sale.id, 'starts_at', later(-1000));
    await t.flashSales.tick();
    expect(await saleEvents(sale.id)).toEqual(['mercato.flash-sale.started']);

    const [a, b] = await bulkCustomers(t, shop, 2);
    const bought = await attempt(t, sale.id, a!, { payment: { token: 'tok_visa' } });
    expect(bought.statusCode).toBe(202);
    expect((await settled(t, shop, bought.json().orderId)).status).toBe('completed');
    const unpaid = await attempt(t, sale.id, b!);
    expect(unpaid.statusCode).toBe(202);
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 19, reserved: 2, available: 17 });

    await shift(sale.id, 'ends_at', later(-1000));
    await t.flashSales.tick();
    expect(await saleEvents(sale.id)).toEqual(['mercato.flash-sale.started', 'mercato.flash-sale.ended']);
    const ended = await saleOf(t, shop, sale.id);
    expect(ended.status).toBe('ended');
    // The one unit nobody took is back in stock; the two admitted orders keep theirs.
    await sleep(1100); // each process reads a sale's settings at most once a second
    const afterEnd = await attempt(t, sale.id, a!);
    expect([afterEnd.statusCode, afterEnd.json().code]).toEqual([409, 'NOT_LIVE']);
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 19, reserved: 1, available: 18 });
    // A buyer admitted before the end may still pay within the window.
    const paid = await send(t.app, 'POST', `/api/v1/orders/${unpaid.json().orderId}/pay`, b!.headers, {
      payment: { token: 'tok_visa' },
    });
    expect(paid.statusCode, paid.body).toBe(202);
    expect((await settled(t, shop, unpaid.json().orderId)).status).toBe('completed');
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 18, reserved: 0, available: 18 });
  });

  it('starts every other sale when one sale’s start fails, and starts that one once it can', async () => {
    const other = await createShop(t, 'fs-lifecycle-other');
    const broken = await createSale(t, shop, await saleVariant(t, shop, 5), {
      units: 1,
      startsAt: later(60_000),
    });
    const sound = await createSale(t, other, await saleVariant(t, other, 5), {
      units: 1,
      startsAt: later(60_000),
    });
    // The broken sale is due first and its start's update fails, as a row the database refuses would.
    await shift(broken.id, 'starts_at', later(-2000));
    await shift(sound.id, 'starts_at', later(-1000));
    const db = t.ctx.db.kysely;
    await withSystem(db, async (trx) => {
      await sql`create function flash_sales.test_refuse_start() returns trigger language plpgsql as $$
        begin raise exception 'refused by the test'; end $$`.execute(trx);
      await sql`create trigger test_refuse_start before update on flash_sales.campaigns for each row
        when (old.id = ${sql.lit(broken.id)}::uuid) execute function flash_sales.test_refuse_start()`.execute(
        trx,
      );
    });
    try {
      await t.flashSales.tick();
      expect(await saleEvents(broken.id)).toEqual([]);
      const soundEvents = await withSystem(db, async (trx) => {
        const { rows } = await sql<{ type: string }>`
          select headers->>'ce-type' as type from wal.messages
          where tenant_id = ${other.id} and namespace = 'order-events' and headers->>'ce-subject' = ${sound.id}`.execute(
          trx,
        );
        return rows.map((r) => r.type);
      });
      expect(soundEvents).toEqual(['mercato.flash-sale.started']);
    } finally {
      await withSystem(db, async (trx) => {
        await sql`drop trigger test_refuse_start on flash_sales.campaigns`.execute(trx);
        await sql`drop function flash_sales.test_refuse_start()`.execute(trx);
      });
    }
    await t.flashSales.tick();
    expect(await saleEvents(broken.id)).toEqual(['mercato.flash-sale.started']);
  });

  it('announces sold-out once the last unit is admitted', async () => {
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 2, perCustomerLimit: 2 });
    const [a] = await bulkCustomers(t, shop, 1);
    expect((await attempt(t, sale.id, a!, { quantity: 2 })).statusCode).toBe(202);
    expect(await saleEvents(sale.id)).toEqual(['mercato.flash-sale.started', 'mercato.flash-sale.sold-out']);
  });

  it('cancels a running sale: unpaid orders cancelled, their units and the pool back in stock', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 4 });
    const [a, b] = await bulkCustomers(t, shop, 2);
    const waiting = await attempt(t, sale.id, a!);
    const paying = await attempt(t, sale.id, b!, { payment: { token: 'tok_visa' } });
    expect((await settled(t, shop, paying.json().orderId)).status).toBe('completed');
    const cancelled = await send(t.app, 'POST', `/api/v1/flash-sales/${sale.id}/cancel`, shop.staff, {});
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect((await orderOf(t, shop, waiting.json().orderId)).status).toBe('cancelled');
    // Sold: 1; everything else back: 10 received = 9 available + 1 sold.
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 9, reserved: 0, available: 9 });
    const late = await attempt(t, sale.id, a!);
    expect([late.statusCode, late.json().code]).toEqual([409, 'NOT_LIVE']);
    expect(await saleEvents(sale.id)).toContain('mercato.flash-sale.ended');
  });

  it('keeps stock whole: available plus the pools plus what was sold is what was received', async () => {
    const variant = await saleVariant(t, shop, 30);
    const saleA = await createSale(t, shop, variant, { units: 10 });
    const saleB = await createSale(t, shop, variant, { units: 5 });
    const buyers = await bulkCustomers(t, shop, 8);
    const tokens = ['tok_visa', 'tok_declined', undefined, 'tok_visa'];
    const answers = await Promise.all(
      buyers.map((c, i) =>
        attempt(
          t,
          i % 2 === 0 ? saleA.id : saleB.id,
          c,
          tokens[i % 4] ? { payment: { token: tokens[i % 4] } } : {},
        ),
      ),
    );
    for (const r of answers) expect(r.statusCode, r.body).toBe(202);
    for (const [i, r] of answers.entries()) if (tokens[i % 4]) await settled(t, shop, r.json().orderId);
    await until(async () => {
      const [a, b] = [await saleOf(t, shop, saleA.id), await saleOf(t, shop, saleB.id)];
      return a.sold + a.released + b.sold + b.released === 6;
    }, 'every paid or declined order counted');
    const [a, b] = [await saleOf(t, shop, saleA.id), await saleOf(t, shop, saleB.id)];
    const stock = await stockOf(t, shop, variant);
    // reserved = the pools (units not admitted) + the unpaid orders' holds.
    const pools = a.remaining + b.remaining;
    const unpaid = a.admitted - a.sold + (b.admitted - b.sold);
    expect(stock.reserved).toBe(pools + unpaid);
    expect(stock.available + pools + unpaid + a.sold + b.sold).toBe(30);
    expect(stock.onHand).toBe(30 - a.sold - b.sold);
  });

  it('puts a paid order’s units back into the running sale when the order is cancelled (refunded) later', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 2 });
    const buyers = await bulkCustomers(t, shop, 4);
    const bought = await attempt(t, sale.id, buyers[0]!, { payment: { token: 'tok_visa' } });
    expect((await settled(t, shop, bought.json().orderId)).status).toBe('completed');
    await until(async () => (await saleOf(t, shop, sale.id)).sold === 1, 'the paid unit counted');
    const refunded = await send(
      t.app,
      'PUT',
      `/api/v1/orders/${bought.json().orderId}/cancel`,
      shop.staff,
      {},
    );
    expect(refunded.statusCode, refunded.body).toBe(200);
    await until(async () => (await saleOf(t, shop, sale.id)).released === 1, 'the refund counted');
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 0, sold: 0, remaining: 2 });
    // received = available + the pool + sold: the unit is back in the pool, not lost.
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 10, reserved: 2, available: 8 });
    // The sale sells its two units again, and no more.
    for (const buyer of buyers.slice(1, 3)) {
      const paid = await attempt(t, sale.id, buyer, { payment: { token: 'tok_visa' } });
      expect(paid.statusCode, paid.body).toBe(202);
      expect((await settled(t, shop, paid.json().orderId)).status).toBe('completed');
    }
    const last = await attempt(t, sale.id, buyers[3]!);
    expect([last.statusCode, last.json().code]).toEqual([409, 'SOLD_OUT']);
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 8, reserved: 0, available: 8 });
  });

  it('shows FlashSaleStats, and streams them as server-sent events while the sale runs', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 2, salePrice: 250 });
    const [a, b, c] = await bulkCustomers(t, shop, 3);
    await attempt(t, sale.id, a!, { payment: { token: 'tok_visa' } });
    await attempt(t, sale.id, b!);
    await attempt(t, sale.id, c!);
    await until(async () => (await saleOf(t, shop, sale.id)).sold === 1, 'the paid unit counted');
    const stats = await send(t.app, 'GET', `/api/v1/flash-sales/${sale.id}/stats`, shop.staff);
    expect(stats.statusCode, stats.body).toBe(200);
    expect(stats.json()).toMatchObject({
      status: 'sold_out',
      units: 2,
      attempts: 3,
      admitted: 2,
      rejected: { sold_out: 1 },
      paid: 1,
      pendingPayment: 1,
      remaining: 0,
      revenue: 250,
      currency: 'EUR',
      breakers: { database: 'closed', payments: 'closed' },
    });
    expect(stats.json().admissionLatencyMs.p50).toBeGreaterThan(0);

    // The stream, over a real connection: an event at once, then one a second while the sale runs.
    const live = await createSale(t, shop, variant, { units: 1 });
    const base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const abort = new AbortController();
    const response = await fetch(`${base}/api/v1/flash-sales/${live.id}/stats/stream`, {
      headers: shop.staff,
      signal: abort.signal,
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const reader = response.body!.getReader();
    let text = '';
    while ((text.match(/event: stats\n/g) ?? []).length < 2) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    abort.abort();
    expect(text.match(/event: stats\ndata: \{[^\n]*"status":"live"/g)).toHaveLength(2);

    // A sale that can no longer change: one event, and the stream ends.
    const stream = await send(t.app, 'POST', `/api/v1/flash-sales/${sale.id}/cancel`, shop.staff, {});
    expect(stream.statusCode).toBe(200);
    const events = await t.app.inject({
      method: 'GET',
      url: `/api/v1/flash-sales/${sale.id}/stats/stream`,
      headers: shop.staff,
    });
    expect(events.statusCode).toBe(200);
    expect(events.headers['content-type']).toBe('text/event-stream');
    expect(events.body).toMatch(/^event: stats\ndata: \{.*"status":"cancelled".*\}\n\n$/s);
  });
});
