import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Shop } from '../cart/cart-test-fixtures.ts';
import { withSystem } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { createAdmissionCommitter } from './admission-committer.ts';
import { admissionService } from './admission-service.ts';
import { createAttemptLimiter } from './attempt-limiter.ts';
import { createBreakers } from './breakers.ts';
import { createCampaignCache } from './campaign-cache.ts';
import { updateCampaign } from './campaign-service.ts';
import {
  bulkCustomers,
  createSale,
  type FlashTestApp,
  flashDeps,
  freshGate,
  GATES,
  saleOf,
  saleVariant,
  silent,
  withFlashShop,
} from './flash-test-fixtures.ts';
import { reconcileCampaign } from './reconcile.ts';
import { createAttemptStats } from './stats.ts';

// A gate is rebuilt (a Redis flush, a restart) by the attempt that finds it not loaded, from the
// admissions in the record and the sale's units. Those units came from the process's campaign
// cache, read up to a second before: a change of units made meanwhile (before the start, by
// another process) left the rebuilt gate sized to the old units. More than the record: the
// record's own check refused the surplus (never oversold: the batch reads the units from the
// locked row). Fewer: the gate answered SOLD_OUT while units were left, until a reconciliation
// (every 30 s) repaired it. The rebuild now reads the units from the record, with the admissions.

describe.each(GATES)('a gate rebuilt while the campaign cache is a change behind, $gate', ({ redis }) => {
  let t: FlashTestApp;
  let shop: Shop;

  withFlashShop('fs-stale-rebuild', (app, s) => {
    t = app;
    shop = s;
  });

  /**
   * A process whose campaign cache never ages (its clock stands still: every read is "within the
   * last second"), with a gate of its own that holds nothing yet.
   */
  async function staleProcess() {
    const gate = await freshGate(redis);
    const deps = flashDeps(t, gate);
    const committer = createAdmissionCommitter(deps, createBreakers(), silent, () => {});
    const cache = createCampaignCache(deps.db, () => 0);
    const service = admissionService(deps, {
      cache,
      stats: createAttemptStats(),
      submit: committer.submit,
      limits: { customer: createAttemptLimiter(1000), ip: createAttemptLimiter(1_000_000) },
    });
    const close = async () => {
      await committer.close();
      await gate.close();
    };
    return { deps, gate, cache, service, close };
  }

  /** A sale starting in a moment, read into the stale process's cache, then changed to `units` before its start. */
  async function changedBeforeStart(p: Awaited<ReturnType<typeof staleProcess>>, from: number, to: number) {
    const variant = await saleVariant(t, shop, 20);
    const startsAt = new Date(Date.now() + 1500);
    const sale = await createSale(t, shop, variant, { units: from, startsAt: startsAt.toISOString() });
    expect((await p.cache.get(shop.id, sale.id))?.units).toBe(from);
    await updateCampaign(p.deps, shop.id, sale.id, 'test', { units: to }, {});
    await sleep(Math.max(0, startsAt.getTime() - Date.now() + 50));
    return sale;
  }

  /** Attempts by `n` customers, one after the other: how many were admitted, and the other answers' codes. */
  async function crowd(p: Awaited<ReturnType<typeof staleProcess>>, saleId: string, n: number) {
    const customers = await bulkCustomers(t, shop, n);
    let admitted = 0;
    const refused: string[] = [];
    for (const c of customers) {
      try {
        await p.service.admit({
          tenantId: shop.id,
          campaignId: saleId,
          customerId: c.id,
          ip: '127.0.0.1',
          key: uuidv7(),
          body: {},
          meta: {},
        });
        admitted += 1;
      } catch (error) {
        refused.push(error instanceof AppError ? error.code : String(error));
      }
    }
    return { admitted, refused };
  }

  const admissionsOf = (saleId: string) =>
    withSystem(t.ctx.db.kysely, async (trx) => {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from flash_sales.admissions where campaign_id = ${saleId}`.execute(trx);
      return rows[0]!.n;
    });

  it('sells every unit the record has when the cache still holds fewer (it answered SOLD_OUT with units left)', async () => {
    const p = await staleProcess();
    try {
      const sale = await changedBeforeStart(p, 2, 4);
      const { admitted, refused } = await crowd(p, sale.id, 6);
      expect(admitted).toBe(4);
      expect(refused).toEqual(['SOLD_OUT', 'SOLD_OUT']);
      expect(await saleOf(t, shop, sale.id)).toMatchObject({ units: 4, admitted: 4, remaining: 0 });
      expect((await p.gate.snapshot(sale.id))?.remaining).toBe(0);
      expect((await reconcileCampaign(p.deps, shop.id, sale.id)).repairs).toEqual([]);
      await p.gate.drop(sale.id);
    } finally {
      await p.close();
    }
  });

  it('never sells more than the record has when the cache still holds more', async () => {
    const p = await staleProcess();
    try {
      const sale = await changedBeforeStart(p, 4, 2);
      const { admitted, refused } = await crowd(p, sale.id, 6);
      expect(admitted).toBe(2);
      expect(refused).toEqual(['SOLD_OUT', 'SOLD_OUT', 'SOLD_OUT', 'SOLD_OUT']);
      expect(await admissionsOf(sale.id)).toBe(2);
      expect(await saleOf(t, shop, sale.id)).toMatchObject({ units: 2, admitted: 2, remaining: 0 });
      // The gate was built with the record's units: nothing to repair.
      expect((await p.gate.snapshot(sale.id))?.remaining).toBe(0);
      expect((await reconcileCampaign(p.deps, shop.id, sale.id)).repairs).toEqual([]);
      await p.gate.drop(sale.id);
    } finally {
      await p.close();
    }
  });
});
