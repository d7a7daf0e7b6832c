import { sql } from 'kysely';
import type { Logger } from 'pino';
import { withSystem, withTenant } from '../platform/db/index.ts';
import type { Admission } from './admission-store.ts';
import { campaignEvent, publishCampaignEvents } from './campaign-events.ts';
import { settleIn } from './campaign-service.ts';
import { type Campaign, getCampaign } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import { createPayingSweep } from './paying-sweep.ts';
import { reconcileCampaign } from './reconcile.ts';
import type { FlashSalesTrx } from './tables.ts';
import { inRange, inTurn } from './turns.ts';
import { endWaiting } from './waiting-orders.ts';

const TICK_MS = 1000;

/** The lifecycle's bounds; tests make them small. */
export type LifecycleOptions = {
  /** Ticks between two reconciliations of the running sales (and one at start: after any restart). */
  reconcileEvery?: number;
  /** Running sales one reconciliation pass compares; the next pass goes on after the last one (by id). */
  reconcileBatch?: number;
  /** Tenants whose payment windows one tick closes; the next tick goes on after the last one (by id). */
  windowTenants?: number;
  /** Admissions (and their campaigns) one tenant's payment-window pass reads. */
  windowBatch?: number;
  /**
   * How long past its payment deadline an admission still `paying` is left to its order event
   * before the sweep settles it from its order (paying-sweep.ts): 10 minutes, past a saga's
   * longest legitimate run (a pending authorization is rechecked with backoff up to 5 minutes).
   */
  payingGraceMs?: number;
  /** Tenants whose paying admissions one tick settles; the next tick goes on after the last one (by id). */
  payingTenants?: number;
  /** A tenant's paying admissions one tick reads; its next turn goes on after the last one (by order id). */
  payingBatch?: number;
};

/**
 * The clock of every sale, one tick a second in each process (cheap indexed scans; rows locked
 * with skip locked, so processes share the work): announces a sale that started, settles one
 * that ended (its pool back to stock), and closes the payment window of admitted orders nobody
 * paid (order failed with reason timeout, units back to the pool while the sale runs, else to stock);
 * settles admissions left paying by an order event that never came (paying-sweep.ts); at start
 * (after any restart) and every 30 s it reconciles the running sales' gates.
 *
 * The bounded passes take turns: each goes on where the last one stopped (keyset by id) and
 * wraps around to the start when fewer are left than its bound, so past the bound every
 * running sale is reconciled and every tenant's windows closed in turn, never the same first ones
 * each time (sales or tenants whose work keeps failing would otherwise hold the bound for ever).
 */
export function createLifecycle(deps: FlashSalesDeps, logger: Logger, options: LifecycleOptions = {}) {
  const { reconcileEvery = 30, reconcileBatch = 1000, windowTenants = 100, windowBatch = 100 } = options;
  const paying = createPayingSweep(deps, logger, {
    tenants: options.payingTenants ?? 100,
    batch: options.payingBatch ?? 100,
    graceMs: options.payingGraceMs ?? 10 * 60_000,
  });
  let running: Promise<void> | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let ticks = 0;
  /** The id the next reconciliation pass starts after; undefined: from the first. */
  let reconciledAfter: string | undefined;
  /** The tenant id the next payment-window pass starts after; undefined: from the first. */
  let windowsAfter: string | undefined;

  async function tick(): Promise<void> {
    try {
      const due = await withSystem(deps.db, async (trx) => {
        const { rows } = await sql<{ id: string; tenant_id: string; kind: 'start' | 'end' }>`
          select id, tenant_id, case when ends_at <= now() or cancelled_at is not null then 'end' else 'start' end as kind
          from flash_sales.campaigns
          where settled_at is null
            and (ends_at <= now() or (starts_at <= now() and cancelled_at is null and not announced ? 'started'))
          order by starts_at, id
          limit 100`.execute(trx);
        const windows = await inTurn(
          windowsAfter,
          windowTenants,
          async (range, limit) => {
            const { rows: due } = await sql<{ tenant_id: string }>`
            select distinct tenant_id from flash_sales.admissions
            where status = 'admitted' and pay_by <= now() ${inRange('tenant_id', range)}
            order by tenant_id limit ${limit}`.execute(trx);
            return due.map((w) => w.tenant_id);
          },
          (tenantId) => tenantId,
        );
        return { campaigns: rows, windows, paying: await paying.due(trx) };
      });
      windowsAfter = due.windows.next;
      // Each sale and each tenant on its own: one that fails (logged, tried again next tick)
      // must not stall every other tenant's starts, ends, payment windows and reconciliation.
      for (const c of due.campaigns) {
        await (c.kind === 'end' ? end(c.tenant_id, c.id) : start(c.tenant_id, c.id)).catch((error) =>
          logger.warn({ err: error, campaignId: c.id }, `flash-sales: the ${c.kind} of a sale failed`),
        );
      }
      for (const tenantId of due.windows.rows) {
        await closeWindows(tenantId).catch((error) =>
          logger.warn({ err: error, tenantId }, 'flash-sales: closing payment windows failed'),
        );
      }
      await paying
        .run(due.paying)
        .catch((error) => logger.warn({ err: error }, 'flash-sales: settling paying admissions failed'));
      if (ticks++ % reconcileEvery === 0) await reconcileRunning();
    } catch (error) {
      logger.warn({ err: error }, 'flash-sales: a lifecycle tick failed');
    }
  }

  /**
   * The gates of the next reconcileBatch sales that are selling (after the last pass's), each
   * compared with the record and repaired (reconcile.ts).
   */
  async function reconcileRunning(): Promise<void> {
    const running = await withSystem(deps.db, (trx) =>
      inTurn(
        reconciledAfter,
        reconcileBatch,
        async (range, limit) => {
          const { rows } = await sql<{ id: string; tenant_id: string }>`
          select id, tenant_id from flash_sales.campaigns
          where settled_at is null and cancelled_at is null and starts_at <= now() and ends_at > now()
            ${inRange('id', range)}
          order by id limit ${limit}`.execute(trx);
          return rows;
        },
        (c) => c.id,
      ),
    );
    reconciledAfter = running.next;
    for (const c of running.rows) {
      await reconcileCampaign(deps, c.tenant_id, c.id).catch((error) =>
        logger.warn({ err: error, campaignId: c.id }, 'flash-sales: reconciliation failed'),
      );
    }
  }

  async function start(tenantId: string, id: string): Promise<void> {
    await withTenant(deps.db, tenantId, async (anyTrx) => {
      const trx = anyTrx as FlashSalesTrx;
      const campaign = await getCampaign(trx, id, true);
      if (campaign.announced.started || campaign.cancelledAt) return;
      const now = new Date();
      const announced = { ...campaign.announced, started: now.toISOString() };
      await trx
        .updateTable('flash_sales.campaigns')
        .set({ announced: JSON.stringify(announced), updated_at: now })
        .where('id', '=', id)
        .execute();
      await publishCampaignEvents(deps.events, trx, tenantId, [
        campaignEvent('started', { ...campaign, announced }, now),
      ]);
    });
  }

  async function end(tenantId: string, id: string): Promise<void> {
    await withTenant(deps.db, tenantId, async (anyTrx) => {
      const trx = anyTrx as FlashSalesTrx;
      await settleIn(deps, trx, tenantId, await getCampaign(trx, id, true), 'system');
    });
    await deps.gate.drop(id).catch(() => {});
  }

  /**
   * Expires up to windowBatch unpaid admissions of the tenant past their window; gives their units
   * back. An admission whose order was cancelled or failed already (its outcome not handled by the
   * sale yet: the order event on the way, or dead-lettered) is released here too, as the event
   * would, units back: left admitted, its due rows filled the batch every tick and the tenant's
   * later windows never closed. Both are final, so such an order is never paid; the late event
   * then finds the admission released and moves nothing again (order-outcomes.ts). A cancelled
   * sale's waiting admissions are due at once (its cancel closed their windows): what the cancel's
   * own batches left (a process killed midway, a batch that failed) is ended here, the orders
   * cancelled (waiting-orders.ts).
   */
  async function closeWindows(tenantId: string): Promise<void> {
    const expired = await withTenant(deps.db, tenantId, async (anyTrx) => {
      const trx = anyTrx as FlashSalesTrx;
      // Locks in the order a sale's cancel takes them (campaign, then its admissions, then
      // orders), campaigns in id order: an admission locked before its campaign deadlocked with
      // a cancel of that sale, and this sweep lost its batch.
      const { rows: due } = await sql<{ campaign_id: string }>`
        select distinct campaign_id from flash_sales.admissions
        where status = 'admitted' and pay_by <= now()
        order by campaign_id limit ${windowBatch}`.execute(trx);
      const campaigns = new Map<string, Campaign>();
      for (const { campaign_id } of due)
        campaigns.set(campaign_id, await getCampaign(trx, campaign_id, true));
      if (campaigns.size === 0) return [];
      const { rows } = await sql<{ order_id: string; campaign_id: string }>`
        select order_id, campaign_id from flash_sales.admissions
        where status = 'admitted' and pay_by <= now() and campaign_id = any(${[...campaigns.keys()]}::uuid[])
        order by pay_by limit ${windowBatch}
        for update skip locked`.execute(trx);
      const back: Admission[] = [];
      for (const row of rows) {
        const campaign = campaigns.get(row.campaign_id)!;
        // Failed with reason timeout; cancelled when its sale was (a cancel's own batches did not
        // end it: the process died, or a batch failed): waiting-orders.ts.
        const ended = await endWaiting(deps, trx, tenantId, campaign, row.order_id);
        if (ended.back) back.push(ended.back);
      }
      return back;
    });
    for (const a of expired)
      await deps.gate.release(a.campaignId, a.customerId, a.quantity, a.idempotencyKey).catch(() => false);
  }

  return {
    /** Ticks every second from now on. */
    start(): void {
      timer = setInterval(() => {
        if (!running && !stopped) running = tick().finally(() => (running = undefined));
      }, TICK_MS);
      timer.unref();
    },
    /** Runs one tick now (tests, and the CLI). */
    tick,
    async close(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
