import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Shop } from '../cart/cart-test-fixtures.ts';
import {
  bulkCustomers,
  closeWindowUnpaid,
  createSale,
  type FlashTestApp,
  flashDeps,
  freshGate,
  saleVariant,
  silent,
  withFlashShop,
} from '../flash-sales/flash-test-fixtures.ts';
import { createParts } from '../flash-sales/parts.ts';
import { testDatabaseKind, testRedisUrl } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { mercato } from './mercato-process.ts';

// `mercato flash-sales reconcile` printed every leaked unit as "never recorded", also one of an
// admission the record holds released (its give-back to the gate lost): the operator read that
// an order was lost when it had been released, and its unit was released back to the sale.
// The command runs as its own process against the test app's PostgreSQL database and Redis.
describe.runIf(testDatabaseKind() === 'postgres' && testRedisUrl() !== undefined)(
  'mercato flash-sales reconcile',
  () => {
    let t: FlashTestApp;
    let shop: Shop;
    withFlashShop('fs-cli-reconcile', (app, s) => {
      t = app;
      shop = s;
    });

    it('says a unit of an admission the record released was released, and one never recorded was never recorded', async () => {
      const sale = await createSale(t, shop, await saleVariant(t, shop, 5), { units: 3 });
      // The gate the command reads: another process's, in Redis, which misses the release.
      const prefix = `test-fs-cli-${uuidv7()}:`;
      const gate = await freshGate(testRedisUrl(), prefix);
      const parts = createParts(flashDeps(t, gate), silent);
      const [customer] = await bulkCustomers(t, shop, 1);
      try {
        const { admission } = await parts.admissions.admit({
          tenantId: shop.id,
          campaignId: sale.id,
          customerId: customer!.id,
          ip: '127.0.0.1',
          key: 'released-unseen',
          body: {},
          meta: {},
        });
        await closeWindowUnpaid(t, admission.orderId);
        // An attempt the gate admitted whose order never reached the record (its process died).
        const lost = uuidv7();
        await gate.admit({
          campaignId: sale.id,
          customerId: uuidv7(),
          key: 'never-recorded',
          orderId: lost,
          quantity: 1,
          limit: 1,
        });

        await sleep(1100); // Past the grace the command is given: no longer possibly in flight.
        const run = await mercato(['flash-sales', 'reconcile', sale.id], {
          DATABASE_URL: t.databaseUrl!,
          REDIS_URL: testRedisUrl()!,
          MERCATO_REDIS_PREFIX: prefix,
          MERCATO_FLASH_LEAK_GRACE_MS: '1000',
          MERCATO_DEMO: 'false',
        });
        expect(run.code, `${run.output}\n${run.errors}`).toBe(0);
        const lines = run.output.split('\n');
        const released = lines.find((l) => l.includes('key released-unseen'));
        expect(released, run.output).toContain(`order ${admission.orderId} released in the record`);
        expect(released).toContain('released back to the sale');
        expect(released).not.toContain('never recorded');
        const leaked = lines.find((l) => l.includes('key never-recorded'));
        expect(leaked, run.output).toContain(`order ${lost} never recorded) given back`);
        // Both units back at the gate; the released key kept, holding none.
        const snapshot = await gate.snapshot(sale.id);
        expect(snapshot?.remaining).toBe(3);
        expect(snapshot?.keys.get(`${admission.customerId}:released-unseen`)).toMatchObject({ quantity: 0 });
      } finally {
        await parts.close();
        await gate.drop(sale.id);
        await gate.close();
      }
    }, 120_000);
  },
);
