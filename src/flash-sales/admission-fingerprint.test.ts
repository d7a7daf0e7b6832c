import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
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
  shop = await createShop(t, 'fs-fingerprint');
});
afterAll(() => t?.close());

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const body = { quantity: 1, payment: { token: 'tok_visa', provider: 'test' } };
/** The same body, its keys in another order at every level. */
const reordered = { payment: { provider: 'test', token: 'tok_visa' }, quantity: 1 };

const storedHash = (saleId: string, key: string) =>
  withSystem(t.ctx.db.kysely, async (trx) => {
    const { rows } = await sql<{ request_hash: string }>`
      select request_hash from flash_sales.admissions
      where campaign_id = ${saleId} and idempotency_key = ${key}`.execute(trx);
    return rows[0]?.request_hash;
  });

describe('the Idempotency-Key of a flash-sale attempt', () => {
  it('answers the same admission when the same body comes back with its keys in another order', async () => {
    const sale = await createSale(t, shop, await saleVariant(t, shop, 10), { units: 5, perCustomerLimit: 3 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    const first = await attempt(t, sale.id, buyer!, body, 'reordered-attempt');
    expect(first.statusCode, first.body).toBe(202);
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(body));
    const again = await attempt(t, sale.id, buyer!, reordered, 'reordered-attempt');
    expect(again.statusCode, again.body).toBe(202);
    expect(again.json().orderId).toBe(first.json().orderId);
    const changed = await attempt(t, sale.id, buyer!, { ...reordered, quantity: 2 }, 'reordered-attempt');
    expect([changed.statusCode, changed.json().code]).toEqual([409, 'IDEMPOTENCY_KEY_REUSED']);
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 1 });
    // The hash is of the body with its keys sorted.
    expect(await storedHash(sale.id, 'reordered-attempt')).toBe(
      sha256('{"payment":{"provider":"test","token":"tok_visa"},"quantity":1}'),
    );
  });

  it('refuses a reused key whose other body asks for more than the limit as IDEMPOTENCY_KEY_REUSED', async () => {
    const sale = await createSale(t, shop, await saleVariant(t, shop, 10), { units: 5, perCustomerLimit: 1 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    const first = await attempt(t, sale.id, buyer!, body, 'reused-over-limit');
    expect(first.statusCode, first.body).toBe(202);
    const reused = await attempt(t, sale.id, buyer!, { ...body, quantity: 2 }, 'reused-over-limit');
    expect([reused.statusCode, reused.json().code], reused.body).toEqual([409, 'IDEMPOTENCY_KEY_REUSED']);
    // A new key asking for as much is over the limit, as before.
    const fresh = await attempt(t, sale.id, buyer!, { ...body, quantity: 2 }, 'fresh-over-limit');
    expect([fresh.statusCode, fresh.json().code], fresh.body).toEqual([409, 'LIMIT_REACHED']);
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 1 });
  });

  it('still answers an admission whose hash an earlier release stored (of the body as sent)', async () => {
    const sale = await createSale(t, shop, await saleVariant(t, shop, 10), { units: 5, perCustomerLimit: 3 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    const first = await attempt(t, sale.id, buyer!, body, 'attempt-before-upgrade');
    expect(first.statusCode, first.body).toBe(202);
    const legacy = sha256(JSON.stringify(body));
    expect(legacy).not.toBe(await storedHash(sale.id, 'attempt-before-upgrade'));
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update flash_sales.admissions set request_hash = ${legacy}
        where campaign_id = ${sale.id} and idempotency_key = 'attempt-before-upgrade'`.execute(trx),
    );
    const again = await attempt(t, sale.id, buyer!, body, 'attempt-before-upgrade');
    expect(again.statusCode, again.body).toBe(202);
    expect(again.json().orderId).toBe(first.json().orderId);
    const changed = await attempt(t, sale.id, buyer!, { ...body, quantity: 2 }, 'attempt-before-upgrade');
    expect([changed.statusCode, changed.json().code]).toEqual([409, 'IDEMPOTENCY_KEY_REUSED']);
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 1 });
  });
});
