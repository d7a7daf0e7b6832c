import { describe, expect, it } from 'vitest';
import type { Shop } from '../cart/cart-test-fixtures.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  createSale,
  type FlashTestApp,
  flashDeps,
  freshGate,
  GATES,
  saleVariant,
  withFlashShop,
} from './flash-test-fixtures.ts';
import type { FlashGate } from './gate.ts';
import { reconcileCampaign } from './reconcile.ts';

// A reconciliation reads the gate, then the record, then resets the gate from the record. An
// attempt the gate admits between the read and the reset (its order not committed yet) was wiped
// by the reset: its key, its customer's count and its units were gone, so the customer's retry
// with the same key was admitted again, the customer could pass the limit, and the unit was
// counted as left a second time. The reconciliation now watches the gate while it runs and its
// reset merges what the gate took meanwhile, atomically.

/** The gate as the reconciliation sees it, with `meanwhile` run once, right after its first read of the gate. */
function admittingAfterFirstRead(gate: FlashGate, meanwhile: () => Promise<void>): FlashGate {
  let first = true;
  return new Proxy(gate, {
    get(target, prop) {
      if (prop === 'snapshot') {
        return async (campaignId: string) => {
          const read = await target.snapshot(campaignId);
          if (first) {
            first = false;
            await meanwhile();
          }
          return read;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe.each(GATES)(
  'a reconciliation that resets the gate while an attempt is admitted, $gate',
  ({ redis }) => {
    let t: FlashTestApp;
    let shop: Shop;

    withFlashShop('fs-reconcile-race', (app, s) => {
      t = app;
      shop = s;
    });

    it('keeps the attempt: its retry is its duplicate, its customer at the limit, its unit taken once', async () => {
      const gate = await freshGate(redis);
      try {
        const sale = await createSale(t, shop, await saleVariant(t, shop, 20), {
          units: 10,
          perCustomerLimit: 1,
        });
        // The gate drifted from the record (10 units, none admitted): it counts 3 units too few.
        await gate.load(sale.id, { remaining: 7, perCustomer: [], keys: [] }, 3600);
        const customerId = uuidv7();
        const orderId = uuidv7();
        const ask = (key: string) =>
          gate.admit({ campaignId: sale.id, customerId, key, orderId: uuidv7(), quantity: 1, limit: 1 });
        let during: unknown;
        const watched = admittingAfterFirstRead(gate, async () => {
          during = await gate.admit({
            campaignId: sale.id,
            customerId,
            key: 'k1',
            orderId,
            quantity: 1,
            limit: 1,
          });
        });

        const report = await reconcileCampaign(flashDeps(t, watched), shop.id, sale.id);

        expect(during).toMatchObject({ outcome: 'admitted', orderId });
        expect(report.repairs).toContainEqual(expect.objectContaining({ kind: 'remaining-corrected' }));
        const after = await gate.snapshot(sale.id);
        expect(after?.remaining).toBe(9);
        expect(after?.perCustomer.get(customerId)).toBe(1);
        expect(after?.keys.get(`${customerId}:k1`)).toMatchObject({ orderId, quantity: 1 });
        expect(await ask('k1')).toEqual({ outcome: 'duplicate', orderId });
        expect(await ask('k2')).toEqual({ outcome: 'limit_reached' });
      } finally {
        await gate.close();
      }
    });
  },
);
