import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  bulkCustomers,
  type Customer,
  createSale,
  type FlashTestApp,
  saleVariant,
  startFlashApp,
} from './flash-test-fixtures.ts';

// The test client plays the storefront's reverse proxy (trusted on loopback), telling the server
// which shopper's address each attempt came from, over a real socket.
const IP_RATE = 2;
let t: FlashTestApp;
let shop: Shop;
let base: string;

beforeAll(async () => {
  t = await startFlashApp({ MERCATO_TRUSTED_PROXIES: '127.0.0.1', MERCATO_FLASH_IP_RATE: String(IP_RATE) });
  shop = await createShop(t, 'fs-attempt-limits');
  base = await t.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(() => t?.close());

const attemptFrom = (saleId: string, customer: Customer, client: string) =>
  fetch(`${base}/api/v1/flash-sales/${saleId}/orders`, {
    method: 'POST',
    headers: {
      ...customer.headers,
      'content-type': 'application/json',
      'idempotency-key': `limits-${uuidv7()}`,
      'x-forwarded-for': client,
    },
    body: '{}',
  });

describe('the attempt limits of flash-sale admission', () => {
  it('counts an IPv6 shopper by their /64, so fresh addresses of one network are one budget', async () => {
    const sale = await createSale(t, shop, await saleVariant(t, shop, 100), { units: 100 });
    // One customer each: the per-customer limit plays no part.
    const buyers = await bulkCustomers(t, shop, 21);
    // 20 attempts, each from another address of 2001:db8:1:2::/64 (its holder has 2^64 of them).
    // Sent at once: even spread over several of the limit's one-second windows, one of them
    // holds more than IP_RATE.
    const answers = await Promise.all(
      buyers.slice(0, 20).map((b, i) => attemptFrom(sale.id, b, `2001:db8:1:2::${(i + 1).toString(16)}`)),
    );
    const limited = answers.filter((r) => r.status === 429);
    expect(limited.length, `statuses: ${answers.map((r) => r.status).join(',')}`).toBeGreaterThan(0);
    expect(limited[0]!.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(limited[0]!.headers.get('retry-after')).toBe('1');
    expect(((await limited[0]!.json()) as { code: string }).code).toBe('RATE_LIMITED');
    for (const r of answers) expect([202, 429]).toContain(r.status);
    // Another network is another budget.
    const other = await attemptFrom(sale.id, buyers[20]!, '2001:db8:1:3::1');
    expect(other.status, await other.text()).toBe(202);
  });

  it('counts attempts on sales that do not exist too: each costs a database read, and the route has no other limit', async () => {
    const [prober] = await bulkCustomers(t, shop, 1);
    // Each from a network of its own: only the customer's limit (5 a second) is in play.
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        attemptFrom(uuidv7(), prober!, `2001:db8:${(i + 16).toString(16)}::1`),
      ),
    );
    const limited = answers.filter((r) => r.status === 429);
    expect(limited.length, `statuses: ${answers.map((r) => r.status).join(',')}`).toBeGreaterThan(0);
    expect(limited[0]!.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await limited[0]!.json()) as { code: string }).code).toBe('RATE_LIMITED');
    for (const r of answers) expect([404, 429]).toContain(r.status);
  });
});
