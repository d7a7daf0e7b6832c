import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { orderOf } from '../checkout/checkout-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { testDatabaseKind, until } from '../platform/testing/index.ts';
import {
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  saleVariant,
  startFlashApp,
} from './flash-test-fixtures.ts';

let t: FlashTestApp;
let shop: Shop;

describe.runIf(testDatabaseKind() === 'postgres')(
  'the payment-window sweep beside a cancel of its sale',
  () => {
    beforeAll(async () => {
      t = await startFlashApp();
      shop = await createShop(t, 'fs-window-locks');
    });
    afterAll(() => t?.close());

    it('waits for the sale, not the other way round, so neither deadlocks and the late order still fails', async () => {
      const variant = await saleVariant(t, shop, 10);
      const sale = await createSale(t, shop, variant, { units: 2 });
      const [buyer] = await bulkCustomers(t, shop, 1);
      const admitted = await attempt(t, sale.id, buyer!);
      expect(admitted.statusCode, admitted.body).toBe(202);
      await withSystem(t.ctx.db.kysely, (trx) =>
        sql`update flash_sales.admissions set pay_by = now() - interval '1 second' where campaign_id = ${sale.id}`.execute(
          trx,
        ),
      );
      // Another transaction locks the sale first, as a cancel of it does, then its admissions.
      const other = new pg.Client({ connectionString: t.databaseUrl });
      await other.connect();
      try {
        await other.query('begin');
        await other.query(`select set_config('app.tenant_id', $1, true)`, [shop.id]);
        await other.query('select id from flash_sales.campaigns where id = $1 for update', [sale.id]);
        const sweep = t.flashSales.tick();
        await until(async () => {
          const { rows } = await other.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity
           where wait_event_type = 'Lock' and datname = current_database() and pid <> pg_backend_pid()`,
          );
          return rows[0]!.n > 0;
        }, 'the sweep waiting on a lock');
        // The sweep holds no admission meanwhile: taking them does not wait on it.
        const { rows } = await other.query(
          'select order_id from flash_sales.admissions where campaign_id = $1 for update',
          [sale.id],
        );
        expect(rows).toHaveLength(1);
        await other.query('commit');
        await sweep;
      } finally {
        await other.end();
      }
      // The sweep went on once the sale was free: the unpaid order failed with its window.
      expect(await orderOf(t, shop, admitted.json().orderId)).toMatchObject({
        status: 'failed',
        failure: { reason: 'timeout' },
      });
    }, 60_000);
  },
);
