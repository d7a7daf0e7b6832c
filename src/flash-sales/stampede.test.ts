import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { stockOf } from '../checkout/checkout-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { testRedisUrl } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  saleOf,
  saleVariant,
  startFlashApp,
} from './flash-test-fixtures.ts';

// The gate in process (embedded) and in Redis (production), each in front of the same record.
const GATES = [
  { gate: 'in-process', env: {} as Record<string, string> },
  ...(testRedisUrl()
    ? [{ gate: 'redis', env: { REDIS_URL: testRedisUrl()!, MERCATO_REDIS_PREFIX: `test-fs-${uuidv7()}:` } }]
    : []),
];

describe.each(GATES)('a stampede through the $gate gate', ({ env }) => {
  let t: FlashTestApp;
  let shop: Shop;

  beforeAll(async () => {
    // Every test request comes from one address: the per-IP limit would refuse the stampede.
    t = await startFlashApp({ ...env, MERCATO_FLASH_IP_RATE: '100000000' });
    shop = await createShop(t, 'fs-stampede');
  });
  afterAll(() => t?.close());

  it('20,000 attempts by 5,000 customers on 1,000 units with a limit of 2: exactly 1,000 admitted, nobody over 2, every 202 has its order', async () => {
    const variant = await saleVariant(t, shop, 1500);
    const sale = await createSale(t, shop, variant, { units: 1000, perCustomerLimit: 2 });
    const customers = await bulkCustomers(t, shop, 5000);
    // Four attempts per customer, shuffled, fired 250 at a time.
    const attempts = customers.flatMap((c) => [c, c, c, c]).sort(() => Math.random() - 0.5);
    const admitted: { customerId: string; orderId: string }[] = [];
    const codes = new Map<string, number>();
    for (let i = 0; i < attempts.length; i += 250) {
      const wave = attempts.slice(i, i + 250);
      // A 503 (the gate or the database too slow for a moment on this shared machine) is retried
      // with the same Idempotency-Key after its Retry-After, as a client does.
      const answers = await Promise.all(
        wave.map(async (c) => {
          const key = `stampede-${uuidv7()}`;
          for (let tries = 1; ; tries += 1) {
            const r = await attempt(t, sale.id, c, {}, key);
            if (r.statusCode !== 503 || tries === 5) return r;
            await sleep(Number(r.headers['retry-after'] ?? 1) * 1000);
          }
        }),
      );
      for (const [j, r] of answers.entries()) {
        if (r.statusCode === 202) admitted.push({ customerId: wave[j]!.id, orderId: r.json().orderId });
        else {
          const code = r.json().code as string;
          codes.set(code, (codes.get(code) ?? 0) + 1);
          expect(['SOLD_OUT', 'LIMIT_REACHED'], `${r.statusCode} ${r.body}`).toContain(code);
        }
      }
    }
    expect(admitted).toHaveLength(1000);
    expect(new Set(admitted.map((a) => a.orderId)).size).toBe(1000);
    const perCustomer = new Map<string, number>();
    for (const a of admitted) perCustomer.set(a.customerId, (perCustomer.get(a.customerId) ?? 0) + 1);
    expect(Math.max(...perCustomer.values())).toBeLessThanOrEqual(2);
    expect(codes.get('SOLD_OUT')).toBeGreaterThan(0);

    // The record agrees: every 202's order exists, one admission each, the campaign's count exact.
    const { orders, admissions } = await withSystem(t.ctx.db.kysely, async (trx) => {
      const ids = admitted.map((a) => a.orderId);
      const { rows: o } = await sql<{ n: number }>`
        select count(*)::int as n from orders.orders where id = any(${ids}::uuid[]) and customer_id is not null`.execute(
        trx,
      );
      const { rows: a } = await sql<{ n: number; units: number }>`
        select count(*)::int as n, coalesce(sum(quantity), 0)::int as units from flash_sales.admissions
        where campaign_id = ${sale.id}`.execute(trx);
      return { orders: o[0]!.n, admissions: a[0]! };
    });
    expect(orders).toBe(1000);
    expect(admissions).toEqual({ n: 1000, units: 1000 });
    expect(await saleOf(t, shop, sale.id)).toMatchObject({
      admitted: 1000,
      remaining: 0,
      status: 'sold_out',
    });
    // Stock never counts a unit twice: 1,500 received = 500 available + 1,000 held by the orders.
    expect(await stockOf(t, shop, variant)).toMatchObject({ onHand: 1500, reserved: 1000, available: 500 });
  }, 240_000);
});
