import { describe, expect, it } from 'vitest';
import type { Shop } from '../cart/cart-test-fixtures.ts';
import {
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  flashDeps,
  freshGate,
  GATES,
  closeWindowUnpaid as release,
  saleOf,
  saleVariant,
  silent,
  withFlashShop,
} from './flash-test-fixtures.ts';
import { createParts } from './parts.ts';
import { reconcileCampaign } from './reconcile.ts';

// An admission released (its window closed unpaid, its order cancelled or failed: its unit given
// back) gave its key back to the gate with the unit: a retry of its Idempotency-Key went through
// the gate as a new attempt, and once the sale was sold out (or the customer at the limit under
// another key) it was answered SOLD_OUT or LIMIT_REACHED, not with the admission the key made.
// A key is answered from what it produced: the same body its admission (released), another body
// 409 IDEMPOTENCY_KEY_REUSED; never a new decision.

// The gate in process (embedded) and in Redis (production), each in front of the same record.
describe.each(GATES)('a retry of a released admission’s key, through the $gate gate', ({ redis, env }) => {
  let t: FlashTestApp;
  let shop: Shop;
  withFlashShop(
    'fs-released-key',
    (app, s) => {
      t = app;
      shop = s;
    },
    { ...env, MERCATO_FLASH_IP_RATE: '100000000', MERCATO_FLASH_CUSTOMER_RATE: '1000' },
  );

  it('answers it with the released admission once the sale sold out (it was SOLD_OUT), also from the sold-out memory', async () => {
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 1 });
    const [first, second, third] = await bulkCustomers(t, shop, 3);
    const admitted = await attempt(t, sale.id, first!, {}, 'released-then-sold-out');
    expect(admitted.statusCode, admitted.body).toBe(202);
    const orderId = admitted.json().orderId as string;
    await release(t, orderId);
    // The unit went back to the sale, and the next buyer took it: sold out.
    expect((await attempt(t, sale.id, second!)).statusCode).toBe(202);
    const late = await attempt(t, sale.id, third!);
    expect([late.statusCode, late.json().code]).toEqual([409, 'SOLD_OUT']);
    // The retries: the first meets the gate, the later ones its sold-out memory (and the answer
    // given before the token is verified): each finds the admission its key made.
    for (let i = 0; i < 3; i++) {
      const again = await attempt(t, sale.id, first!, {}, 'released-then-sold-out');
      expect(again.statusCode, again.body).toBe(202);
      expect(again.json()).toMatchObject({ orderId, status: 'released' });
      expect(again.headers.location).toBe(`/api/v1/orders/${orderId}`);
    }
    const reused = await attempt(t, sale.id, first!, { quantity: 2 }, 'released-then-sold-out');
    expect([reused.statusCode, reused.json().code]).toEqual([409, 'IDEMPOTENCY_KEY_REUSED']);
    const other = await attempt(
      t,
      sale.id,
      first!,
      { payment: { token: 'tok_visa' } },
      'released-then-sold-out',
    );
    expect([other.statusCode, other.json().code]).toEqual([409, 'IDEMPOTENCY_KEY_REUSED']);
    // Nothing moved: one unit admitted (the second buyer's), one released; the gate agrees.
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 1, released: 1, remaining: 0 });
    expect((await t.flashSales.reconcile(shop.id, sale.id)).repairs).toEqual([]);
  });

  it('answers it with the released admission while the customer holds the limit under another key (it was LIMIT_REACHED)', async () => {
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 3, perCustomerLimit: 1 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    const admitted = await attempt(t, sale.id, buyer!, {}, 'released-then-limit');
    expect(admitted.statusCode, admitted.body).toBe(202);
    const orderId = admitted.json().orderId as string;
    await release(t, orderId);
    // The released unit no longer counts against the limit: another key buys again.
    const next = await attempt(t, sale.id, buyer!, {}, 'after-the-release');
    expect(next.statusCode, next.body).toBe(202);
    const again = await attempt(t, sale.id, buyer!, {}, 'released-then-limit');
    expect(again.statusCode, again.body).toBe(202);
    expect(again.json()).toMatchObject({ orderId, status: 'released' });
    // The other key still answers its own admission.
    const mine = await attempt(t, sale.id, buyer!, {}, 'after-the-release');
    expect(mine.json()).toMatchObject({ orderId: next.json().orderId, status: 'admitted' });
    expect(await saleOf(t, shop, sale.id)).toMatchObject({ admitted: 1, released: 1, remaining: 2 });
    expect((await t.flashSales.reconcile(shop.id, sale.id)).repairs).toEqual([]);
  });

  it('answers it from the record in a process whose gate holds nothing (restarted or flushed), which rebuilds the gate with the key', async () => {
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 1 });
    const [first, second] = await bulkCustomers(t, shop, 2);
    const admitted = await attempt(t, sale.id, first!, {}, 'released-then-rebuilt');
    expect(admitted.statusCode, admitted.body).toBe(202);
    const orderId = admitted.json().orderId as string;
    await release(t, orderId);
    expect((await attempt(t, sale.id, second!)).statusCode).toBe(202);
    // Another process, its gate empty (a restart, or a Redis that lost its keys): the attempt
    // finds no state, rebuilds it from the record, and asks again.
    const gate = await freshGate(redis);
    const parts = createParts(flashDeps(t, gate), silent);
    try {
      const ask = (body: Record<string, unknown>) =>
        parts.admissions.admit({
          tenantId: shop.id,
          campaignId: sale.id,
          customerId: first!.id,
          ip: '127.0.0.1',
          key: 'released-then-rebuilt',
          body,
          meta: {},
        });
      const { admission, replayed } = await ask({});
      expect(replayed).toBe(true);
      expect(admission).toMatchObject({ orderId, status: 'released' });
      await expect(ask({ quantity: 1 })).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
      // The rebuilt gate: the sale sold out, the released key held with no unit.
      const snapshot = await gate.snapshot(sale.id);
      expect(snapshot?.remaining).toBe(0);
      expect(snapshot?.keys.get(`${first!.id}:released-then-rebuilt`)).toMatchObject({
        orderId,
        quantity: 0,
      });
      expect(snapshot?.perCustomer.get(first!.id)).toBeUndefined();
    } finally {
      await parts.close();
      await gate.drop(sale.id);
      await gate.close();
    }
  });

  it('has reconciliation release, keeping its key, a unit a gate still counts for an admission the record released', async () => {
    const variant = await saleVariant(t, shop, 5);
    const sale = await createSale(t, shop, variant, { units: 2 });
    const [buyer] = await bulkCustomers(t, shop, 1);
    // A gate that misses the release (its give-back lost: Redis down at that moment).
    const gate = await freshGate(redis);
    const deps = flashDeps(t, gate);
    const parts = createParts(deps, silent);
    try {
      const { admission } = await parts.admissions.admit({
        tenantId: shop.id,
        campaignId: sale.id,
        customerId: buyer!.id,
        ip: '127.0.0.1',
        key: 'released-behind-the-gate',
        body: {},
        meta: {},
      });
      await release(t, admission.orderId);
      const key = `${buyer!.id}:released-behind-the-gate`;
      expect((await gate.snapshot(sale.id))?.keys.get(key)?.quantity).toBe(1);
      const result = await reconcileCampaign(deps, shop.id, sale.id);
      expect(result.repairs).toEqual([
        {
          kind: 'leaked-unit',
          customerId: buyer!.id,
          key: 'released-behind-the-gate',
          orderId: admission.orderId,
          quantity: 1,
          released: true,
        },
      ]);
      const snapshot = await gate.snapshot(sale.id);
      expect(snapshot?.remaining).toBe(2);
      expect(snapshot?.keys.get(key)).toMatchObject({ orderId: admission.orderId, quantity: 0 });
      expect((await reconcileCampaign(deps, shop.id, sale.id)).repairs).toEqual([]);
      // A gate that lacks the released key altogether (loaded before keys were kept) gets it back.
      await gate.reset(sale.id, { remaining: 2, perCustomer: [], keys: [] }, 3600);
      const restored = await reconcileCampaign(deps, shop.id, sale.id);
      expect(restored.repairs).toEqual([{ kind: 'remaining-corrected', from: 2, to: 2, missingKeys: 1 }]);
      expect((await gate.snapshot(sale.id))?.keys.get(key)).toMatchObject({ quantity: 0 });
    } finally {
      await parts.close();
      await gate.drop(sale.id);
      await gate.close();
    }
  });
});
