import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createShop, type Shop } from '../cart/cart-test-fixtures.ts';
import { send } from '../identity/users/user-test-fixtures.ts';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { testDatabaseKind, until } from '../platform/testing/index.ts';
import { settleIn } from './campaign-service.ts';
import { getCampaign } from './campaign-store.ts';
import {
  attempt,
  bulkCustomers,
  createSale,
  type FlashTestApp,
  flashDeps,
  saleVariant,
  startFlashApp,
} from './flash-test-fixtures.ts';
import type { FlashSalesTrx } from './tables.ts';

let t: FlashTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startFlashApp();
  shop = await createShop(t, 'fs-locked-liveness');
});
afterAll(() => t?.close());

/** The sale's row as stored: units, admitted, what was announced. */
const rowOf = (saleId: string) =>
  withSystem(t.ctx.db.kysely, async (trx) => {
    const { rows } = await sql<{ units: number; admitted: number; announced: Record<string, string> }>`
      select units, admitted, announced from flash_sales.campaigns where id = ${saleId}`.execute(trx);
    return rows[0]!;
  });

/** A live sale of 3 units with one admission, and `more` customers who have not tried yet. */
async function saleWithAnAdmission(more = 0) {
  const variant = await saleVariant(t, shop, 10);
  const sale = await createSale(t, shop, variant, { units: 3 });
  const [first, ...others] = await bulkCustomers(t, shop, 1 + more);
  const admitted = await attempt(t, sale.id, first!);
  expect(admitted.statusCode, admitted.body).toBe(202);
  return { sale, others };
}

/** Settles the sale as the lifecycle's end does once a clock ahead of this process's passed its end. */
const settle = (saleId: string) =>
  withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
    const locked = await getCampaign(trx as FlashSalesTrx, saleId, true);
    await settleIn(flashDeps(t), trx as FlashSalesTrx, shop.id, locked, 'system');
  });

// The lifecycle ends a sale by the database's clock (`ends_at <= now()`) and a change or an
// admission batch decided by this process's: a process whose clock is behind the one that settled
// the sale, or started it, must still go by what the locked row says.
describe("a sale's liveness, decided from its locked row", () => {
  it('answers NOT_LIVE to an attempt on a sale its end settled, however early this process’s clock, and keeps its units', async () => {
    const {
      sale,
      others: [buyer],
    } = await saleWithAnAdmission(1);
    await settle(sale.id);
    const late = await attempt(t, sale.id, buyer!);
    expect([late.statusCode, late.json().code], late.body).toEqual([409, 'NOT_LIVE']);
    // Not rewritten to what was admitted, no sell-out announced for a sale that ended.
    const row = await rowOf(sale.id);
    expect(row).toMatchObject({ units: 3, admitted: 1 });
    expect(row.announced.soldOut).toBeUndefined();
  }, 60_000);

  it('refuses NOT_LIVE to a cancel of a sale its end settled, however early this process’s clock, leaving its admitted orders waiting for payment', async () => {
    const { sale } = await saleWithAnAdmission();
    await settle(sale.id);
    const cancel = await send(t.app, 'POST', `/api/v1/flash-sales/${sale.id}/cancel`, shop.staff, {});
    expect([cancel.statusCode, cancel.json().code], cancel.body).toEqual([409, 'NOT_LIVE']);
    const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
      sql<{ cancelled_at: Date | null; waiting: number }>`
        select c.cancelled_at, (select count(*)::int from flash_sales.admissions a
          where a.campaign_id = c.id and a.status = 'admitted') as waiting
        from flash_sales.campaigns c where c.id = ${sale.id}`.execute(trx),
    );
    expect(rows[0]).toEqual({ cancelled_at: null, waiting: 1 });
  }, 60_000);

  it('refuses CAMPAIGN_STARTED to a change of a sale with admissions, however early this process’s clock', async () => {
    const { sale } = await saleWithAnAdmission();
    // To this process the sale starts in a minute: a process whose clock was ahead admitted.
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update flash_sales.campaigns set starts_at = now() + interval '1 minute' where id = ${sale.id}`.execute(
        trx,
      ),
    );
    const changed = await send(t.app, 'PUT', `/api/v1/flash-sales/${sale.id}`, shop.staff, { units: 5 });
    expect([changed.statusCode, changed.json().code], changed.body).toEqual([409, 'CAMPAIGN_STARTED']);
    expect(await rowOf(sale.id)).toMatchObject({ units: 3, admitted: 1 });
  }, 60_000);

  it.runIf(testDatabaseKind() === 'postgres')(
    'refuses CAMPAIGN_STARTED to a change that waited for the sale while it started',
    async () => {
      const variant = await saleVariant(t, shop, 10);
      const startsAt = new Date(Date.now() + 2000);
      const sale = await createSale(t, shop, variant, { units: 3, startsAt: startsAt.toISOString() });
      let pending: ReturnType<typeof send> | undefined;
      // Another transaction holds the sale (as the lifecycle's start does) until past its start.
      await withTenant(t.ctx.db.kysely, shop.id, async (anyTrx) => {
        const trx = anyTrx as FlashSalesTrx;
        const held = await getCampaign(trx, sale.id, true);
        pending = send(t.app, 'PUT', `/api/v1/flash-sales/${sale.id}`, shop.staff, { units: 5 });
        await until(
          () =>
            withSystem(t.ctx.db.kysely, async (other) => {
              const { rows } = await sql<{ n: number }>`
                select count(*)::int as n from pg_stat_activity
                where wait_event_type = 'Lock' and datname = current_database()`.execute(other);
              return rows[0]!.n > 0;
            }),
          'the change waiting for the sale',
        );
        await sleep(Math.max(0, startsAt.getTime() - Date.now()) + 50);
        const now = new Date();
        await trx
          .updateTable('flash_sales.campaigns')
          .set({
            announced: JSON.stringify({ ...held.announced, started: now.toISOString() }),
            updated_at: now,
          })
          .where('id', '=', sale.id)
          .execute();
      });
      const changed = await pending!;
      expect([changed.statusCode, changed.json().code], changed.body).toEqual([409, 'CAMPAIGN_STARTED']);
      expect(await rowOf(sale.id)).toMatchObject({ units: 3 });
    },
    60_000,
  );
});
