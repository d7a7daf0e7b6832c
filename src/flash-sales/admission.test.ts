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
  shop = await createShop(t, 'fs-admission');
});
afterAll(() => t?.close());

const later = (ms: number) => new Date(Date.now() + ms).toISOString();

describe('flash-sale admission', () => {
  it('admits a customer with a token: 202 means the order exists, and the saga pays it at the sale price', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 3, salePrice: 799 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    const response = await attempt(t, sale.id, buyer!, { payment: { token: 'tok_visa' } });
    expect(response.statusCode, response.body).toBe(202);
    const admission = response.json();
    expect(admission).toMatchObject({ campaignId: sale.id, quantity: 1, status: 'admitted' });
    expect(response.headers.location).toBe(`/api/v1/orders/${admission.orderId}`);
    // The order is there the moment the 202 is.
    expect((await orderOf(t, shop, admission.orderId)).customerId).toBe(buyer!.id);
    const order = await settled(t, shop, admission.orderId);
    expect(order).toMatchObject({ status: 'completed', paymentStatus: 'captured', totals: { total: 799 } });
    expect(order.lines).toMatchObject([{ variantId: variant.id, quantity: 1, unitPrice: 799 }]);
    await until(async () => (await saleOf(t, shop, sale.id)).sold === 1, 'the sale counts the paid unit');
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 1, sold: 1, remaining: 2 });
    // Sold: on hand falls by one; the pool still holds the other two.
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 9, reserved: 2, available: 7 });
  });

  it('answers the same Idempotency-Key with the same admission, and another body under it with 409', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 5, perCustomerLimit: 3 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    // As many at once as one customer may send in a second (MERCATO_FLASH_CUSTOMER_RATE, 5).
    const results = await Promise.all(
      Array.from({ length: 5 }, () => attempt(t, sale.id, buyer!, {}, 'same-key')),
    );
    for (const r of results) expect(r.statusCode, r.body).toBe(202);
    expect(new Set(results.map((r) => r.json().orderId)).size).toBe(1);
    await sleep(1100); // the customer's second of attempts is over
    const other = await attempt(t, sale.id, buyer!, { quantity: 2 }, 'same-key');
    expect(other.statusCode).toBe(409);
    expect(other.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 1 });
  });

  it('answers a replay after the sale ended with the admission its key made, not NOT_LIVE', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 2 });
    const [buyer, late] = await bulkCustomers(t, shop, 2);
    const first = await attempt(t, sale.id, buyer!, {}, 'lost-answer');
    expect(first.statusCode, first.body).toBe(202);
    // The sale ends (time passing) and is settled; the buyer retries, their first answer lost.
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update flash_sales.campaigns set ends_at = now() - interval '1 second' where id = ${sale.id}`.execute(
        trx,
      ),
    );
    await t.flashSales.tick();
    await sleep(1100); // each process reads a sale's settings at most once a second
    const replay = await attempt(t, sale.id, buyer!, {}, 'lost-answer');
    expect(replay.statusCode, replay.body).toBe(202);
    expect(replay.json()).toMatchObject({ orderId: first.json().orderId, status: 'admitted' });
    const reused = await attempt(t, sale.id, buyer!, { quantity: 2 }, 'lost-answer');
    expect([reused.statusCode, reused.json().code]).toEqual([409, 'IDEMPOTENCY_KEY_REUSED']);
    // A key that was never admitted is still refused.
    const fresh = await attempt(t, sale.id, late!);
    expect([fresh.statusCode, fresh.json().code]).toEqual([409, 'NOT_LIVE']);
  });

  it('refuses with stable codes: NOT_LIVE before the start, LIMIT_REACHED over the limit, SOLD_OUT after the last unit', async () => {
    const variant = await saleVariant(t, shop, 10);
    const [a, b, c] = await bulkCustomers(t, shop, 3);
    const scheduled = await createSale(t, shop, variant, { units: 1, startsAt: later(60_000) });
    const early = await attempt(t, scheduled.id, a!);
    expect([early.statusCode, early.json().code]).toEqual([409, 'NOT_LIVE']);

    const sale = await createSale(t, shop, variant, { units: 3, perCustomerLimit: 2 });
    expect((await attempt(t, sale.id, a!, { quantity: 2 })).statusCode).toBe(202);
    const over = await attempt(t, sale.id, a!);
    expect([over.statusCode, over.json().code]).toEqual([409, 'LIMIT_REACHED']);
    const tooMany = await attempt(t, sale.id, b!, { quantity: 3 });
    expect([tooMany.statusCode, tooMany.json().code]).toEqual([409, 'LIMIT_REACHED']);
    expect((await attempt(t, sale.id, b!)).statusCode).toBe(202);
    const gone = await attempt(t, sale.id, c!);
    expect([gone.statusCode, gone.json().code]).toEqual([409, 'SOLD_OUT']);
    expect(gone.headers['content-type']).toContain('application/problem+json');
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ status: 'sold_out', admitted: 3, remaining: 0 });
  });

  it('answers a sold-out sale before verifying the token, while a replay of an admitted key still finds its order', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 1 });
    const [winner, late] = await bulkCustomers(t, shop, 2);
    const won = await attempt(t, sale.id, winner!, {}, 'winner-key');
    expect(won.statusCode).toBe(202);
    // The same claims with a broken signature: verified, it is refused.
    const [head, payload] = late!.headers.authorization!.slice(7).split('.');
    // From a storefront in the browser: every answer carries the CORS and security headers.
    const forged = {
      ...late!,
      headers: { authorization: `Bearer ${head}.${payload}.AAAA`, origin: 'https://shop.example' },
    };
    const live = await createSale(t, shop, variant, { units: 1 });
    const refused = await attempt(t, live.id, forged);
    expect(refused.statusCode).toBe(401);
    // Once this process remembers the sale sold out, such attempts are answered from memory.
    const ordinary = await attempt(t, sale.id, late!);
    expect(ordinary.json().code).toBe('SOLD_OUT');
    await until(async () => (await attempt(t, sale.id, forged)).statusCode === 409, 'sold out from memory');
    const early = await attempt(t, sale.id, forged);
    expect([early.statusCode, early.json().code]).toEqual([409, 'SOLD_OUT']);
    expect(early.headers['x-request-id']).toBeDefined();
    // The answer the gate's path gives, member for member (written straight to the socket here).
    expect(early.headers['content-type']).toBe(ordinary.headers['content-type']);
    expect(Object.keys(early.json()).sort()).toEqual(Object.keys(ordinary.json()).sort());
    // The same headers as any other answer, though no later hook ran for it.
    for (const header of [
      'access-control-allow-origin',
      'access-control-expose-headers',
      'x-content-type-options',
      'content-security-policy',
    ]) {
      expect(early.headers[header], header).toBeDefined();
      expect(early.headers[header], header).toBe(refused.headers[header]);
    }
    // Answered again from what this process remembers (the header's claims, the sale's error):
    // each answer is still its own request's.
    const again = await attempt(t, sale.id, forged);
    expect(again.json()).toMatchObject({
      code: 'SOLD_OUT',
      instance: `/api/v1/flash-sales/${sale.id}/orders`,
    });
    expect(again.json().requestId).toBe(again.headers['x-request-id']);
    expect(again.json().requestId).not.toBe(early.json().requestId);
    const replay = await attempt(t, sale.id, winner!, {}, 'winner-key');
    expect([replay.statusCode, replay.json().orderId]).toEqual([202, won.json().orderId]);
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 1 });
  });

  it('answers 429 with Retry-After when one customer tries too fast', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 1 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    const answers = await Promise.all(Array.from({ length: 12 }, () => attempt(t, sale.id, buyer!)));
    const limited = answers.filter((r) => r.statusCode === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]!.headers['retry-after']).toBe('1');
    expect(limited[0]!.json().code).toBe('RATE_LIMITED');
  });

  it('goes on paying other shops’ orders while one shop’s payment batch fails', async () => {
    // Made first, so its tenant id comes first in the queue's round.
    const stuckShop = await createShop(t, 'fs-stuck');
    const goodShop = await createShop(t, 'fs-good');
    const stuckSale = await createSale(t, stuckShop, await saleVariant(t, stuckShop, 10), { units: 1 });
    const [stuckBuyer] = await bulkCustomers(t, stuckShop, 1);
    const stuck = await attempt(t, stuckSale.id, stuckBuyer!);
    expect(stuck.statusCode, stuck.body).toBe(202);
    // A payment no saga can start (a provider Mercato does not have, stored before providers were
    // checked): its shop's batch fails on every round.
    const poison = (payment: string | null, payBy: string) =>
      withSystem(t.ctx.db.kysely, (trx) =>
        sql`update flash_sales.admissions set payment = ${payment}::jsonb, pay_by = ${payBy}::timestamptz
            where order_id = ${stuck.json().orderId}`.execute(trx),
      );
    await poison('{"provider":"nope","token":"tok_visa"}', later(3_600_000));
    const goodSale = await createSale(t, goodShop, await saleVariant(t, goodShop, 10), { units: 1 });
    const [buyer] = await bulkCustomers(t, goodShop, 1);
    const paid = await attempt(t, goodSale.id, buyer!, { payment: { token: 'tok_visa' } });
    expect(paid.statusCode, paid.body).toBe(202);
    expect((await settled(t, goodShop, paid.json().orderId)).status).toBe('completed');
    expect((await orderOf(t, stuckShop, stuck.json().orderId)).status).toBe('created');
    await poison(null, later(-1000));
  });

  it('gives a declined payment’s unit back to the sale, where the next buyer gets it', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 1 });
    const [unlucky, next] = await bulkCustomers(t, shop, 2);
    const first = await attempt(t, sale.id, unlucky!, { payment: { token: 'tok_declined' } });
    expect(first.statusCode, first.body).toBe(202);
    const failed = await settled(t, shop, first.json().orderId);
    expect(failed).toMatchObject({ status: 'failed', failure: { reason: 'payment_declined' } });
    await until(async () => (await saleOf(t, shop, sale.id)).released === 1, 'the unit comes back');
    const second = await attempt(t, sale.id, next!, { payment: { token: 'tok_visa' } });
    expect(second.statusCode, second.body).toBe(202);
    expect((await settled(t, shop, second.json().orderId)).status).toBe('completed');
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 9, reserved: 0, available: 9 });
  });

  it('waits for a payment without a token until the window closes, then gives the unit back', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 2, paymentWindowMinutes: 5 });
    const [payer, late, next] = await bulkCustomers(t, shop, 3);
    const a = await attempt(t, sale.id, payer!);
    const b = await attempt(t, sale.id, late!);
    expect([a.statusCode, b.statusCode]).toEqual([202, 202]);
    const deadline = new Date(a.json().paymentDeadline).getTime();
    expect(deadline - Date.now()).toBeGreaterThan(4 * 60_000);

    const paid = await send(t.app, 'POST', `/api/v1/orders/${a.json().orderId}/pay`, payer!.headers, {
      payment: { token: 'tok_visa' },
    });
    expect(paid.statusCode, paid.body).toBe(202);
    expect((await settled(t, shop, a.json().orderId)).status).toBe('completed');
    // Someone else's order is not theirs to pay.
    const stranger = await send(t.app, 'POST', `/api/v1/orders/${b.json().orderId}/pay`, next!.headers, {
      payment: { token: 'tok_visa' },
    });
    expect(stranger.statusCode).toBe(404);

    // The window of the late buyer closes (its deadline moved to the past: time passing).
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update flash_sales.admissions set pay_by = now() - interval '1 second' where order_id = ${b.json().orderId}`.execute(
        trx,
      ),
    );
    await t.flashSales.tick();
    const expired = await orderOf(t, shop, b.json().orderId);
    expect(expired).toMatchObject({ status: 'failed', failure: { reason: 'timeout' } });
    const tooLate = await send(t.app, 'POST', `/api/v1/orders/${b.json().orderId}/pay`, late!.headers, {
      payment: { token: 'tok_visa' },
    });
    expect([tooLate.statusCode, tooLate.json().code]).toEqual([409, 'PAYMENT_WINDOW_CLOSED']);
    const again = await attempt(t, sale.id, next!, { payment: { token: 'tok_visa' } });
    expect(again.statusCode, again.body).toBe(202);
    expect((await settled(t, shop, again.json().orderId)).status).toBe('completed');
    await until(async () => (await saleOf(t, shop, sale.id)).sold === 2, 'both paid units counted');
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ sold: 2, released: 1, remaining: 0 });
  });

  it('refuses a payment provider Mercato does not have, at admission and at pay: such an order would stall the payment queue', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 3 });
    const [odd, waiting, payer] = await bulkCustomers(t, shop, 3);
    const refused = await attempt(t, sale.id, odd!, { payment: { provider: 'nope', token: 'tok_visa' } });
    expect([refused.statusCode, refused.json().code], refused.body).toEqual([400, 'VALIDATION_FAILED']);
    expect(JSON.stringify(refused.json().errors)).toContain('/payment/provider');
    const admitted = await attempt(t, sale.id, waiting!);
    expect(admitted.statusCode, admitted.body).toBe(202);
    const pay = await send(t.app, 'POST', `/api/v1/orders/${admitted.json().orderId}/pay`, waiting!.headers, {
      payment: { provider: 'stripe', token: 'tok_visa' },
    });
    expect([pay.statusCode, pay.json().code], pay.body).toEqual([400, 'VALIDATION_FAILED']);
    // The queue goes on: the next buyer's payment goes through.
    const paid = await attempt(t, sale.id, payer!, { payment: { token: 'tok_visa' } });
    expect(paid.statusCode, paid.body).toBe(202);
    expect((await settled(t, shop, paid.json().orderId)).status).toBe('completed');
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 2 });
  });

  it('refuses a customer without a shipping address, and gives the gate’s unit back', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 1 });
    const [homeless] = await bulkCustomers(t, shop, 1, false);
    const [buyer] = await bulkCustomers(t, shop, 1);
    const refused = await attempt(t, sale.id, homeless!);
    expect([refused.statusCode, refused.json().code]).toEqual([422, 'CHECKOUT_INVALID']);
    expect((await attempt(t, sale.id, buyer!)).statusCode).toBe(202);
  });

  it('answers bad input with problem+json', async () => {
    const variant = await saleVariant(t, shop, 10);
    const sale = await createSale(t, shop, variant, { units: 1 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    const noKey = await send(t.app, 'POST', `/api/v1/flash-sales/${sale.id}/orders`, buyer!.headers, {});
    expect([noKey.statusCode, noKey.json().code]).toEqual([400, 'IDEMPOTENCY_KEY_REQUIRED']);
    for (const body of [
      { quantity: 0 },
      { quantity: 'one' },
      { payment: { token: '' } },
      { shippingAddressId: 'x' },
      { extra: 1 },
    ]) {
      const response = await attempt(t, sale.id, buyer!, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().code).toBe('VALIDATION_FAILED');
    }
    expect((await attempt(t, 'not-a-uuid', buyer!)).statusCode).toBe(400);
    const anonymous = await send(
      t.app,
      'POST',
      `/api/v1/flash-sales/${sale.id}/orders`,
      { 'idempotency-key': 'k' },
      {},
    );
    expect(anonymous.statusCode).toBe(401);
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 0 });
  });
});
