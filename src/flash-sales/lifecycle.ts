import { sql } from 'kysely';
import type { Logger } from 'pino';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { type Admission, releaseAdmissions } from './admission-store.ts';
import { campaignEvent, publishCampaignEvents } from './campaign-events.ts';
import { settleIn } from './campaign-service.ts';
import { type Campaign, getCampaign } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import { reconcileCampaign } from './reconcile.ts';
import type { FlashSalesTrx } from './tables.ts';
import { returnUnits } from './units-back.ts';

const TICK_MS = 1000;
/** Ticks between two reconciliations of the running sales (and one at start: after any restart). */
const RECONCILE_EVERY = 30;
/** Admissions one transaction expires. */
const BATCH = 100;

/**
 * The clock of every sale, one tick a second in each process (cheap indexed scans; rows locked
 * with skip locked, so processes share the work): announces a sale that started, settles one
 * that ended (its pool back to stock), and closes the payment window of admitted orders nobody
 * paid (order failed with reason timeout, units back to the pool while the sale runs, else to stock);
 * at start (after any restart) and every 30 s it reconciles the running sales' gates.
 */
export function createLifecycle(deps: FlashSalesDeps, logger: Logger) {
  let running: Promise<void> | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let ticks = 0;

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
        const { rows: windows } = await sql<{ tenant_id: string }>`
          select distinct tenant_id from flash_sales.admissions
          where status = 'admitted' and pay_by <= now() limit 100`.execute(trx);
        return { campaigns: rows, windows: windows.map((w) => w.tenant_id) };
      });
      // Each sale and each tenant on its own: one that fails (logged, tried again next tick)
      // must not stall every other tenant's starts, ends, payment windows and reconciliation.
      for (const c of due.campaigns) {
        await (c.kind === 'end' ? end(c.tenant_id, c.id) : start(c.tenant_id, c.id)).catch((error) =>
          logger.warn({ err: error, campaignId: c.id }, `flash-sales: the ${c.kind} of a sale failed`),
        );
      }
      for (const tenantId of due.windows) {
        await closeWindows(tenantId).catch((error) =>
          logger.warn({ err: error, tenantId }, 'flash-sales: closing payment windows failed'),
        );
      }
      if (ticks++ % RECONCILE_EVERY === 0) await reconcileRunning();
    } catch (error) {
      logger.warn({ err: error }, 'flash-sales: a lifecycle tick failed');
    }
  }

  /** The gate of every sale that is selling, compared with the record and repaired (reconcile.ts). */
  async function reconcileRunning(): Promise<void> {
    const running = await withSystem(deps.db, async (trx) => {
      const { rows } = await sql<{ id: string; tenant_id: string }>`
        select id, tenant_id from flash_sales.campaigns
        where settled_at is null and cancelled_at is null and starts_at <= now() and ends_at > now()
        limit 1000`.execute(trx);
      return rows;
    });
    for (const c of running) {
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

  /** Expires up to BATCH unpaid admissions of the tenant past their window; gives their units back. */
  async function closeWindows(tenantId: string): Promise<void> {
    const expired = await withTenant(deps.db, tenantId, async (anyTrx) => {
      const trx = anyTrx as FlashSalesTrx;
      // Locks in the order a sale's cancel takes them (campaign, then its admissions, then
      // orders), campaigns in id order: an admission locked before its campaign deadlocked with
      // a cancel of that sale, and this sweep lost its batch.
      const { rows: due } = await sql<{ campaign_id: string }>`
        select distinct campaign_id from flash_sales.admissions
        where status = 'admitted' and pay_by <= now()
        order by campaign_id limit ${BATCH}`.execute(trx);
      const campaigns = new Map<string, Campaign>();
      for (const { campaign_id } of due)
        campaigns.set(campaign_id, await getCampaign(trx, campaign_id, true));
      if (campaigns.size === 0) return [];
      const { rows } = await sql<{ order_id: string; campaign_id: string }>`
        select order_id, campaign_id from flash_sales.admissions
        where status = 'admitted' and pay_by <= now() and campaign_id = any(${[...campaigns.keys()]}::uuid[])
        order by pay_by limit ${BATCH}
        for update skip locked`.execute(trx);
      const done: { admission: Admission; settled: boolean }[] = [];
      for (const row of rows) {
        const campaign = campaigns.get(row.campaign_id)!;
        const actor = `flash-sale:${campaign.id}`;
        // An order cancelled meanwhile is the order events' to release (order-outcomes.ts).
        const order = await deps.orders.get(trx, tenantId, row.order_id, { lock: true });
        if (order?.status !== 'created') continue;
        await deps.orders.transition(trx, tenantId, row.order_id, 'failed', {
          actor,
          failure: { reason: 'timeout', message: 'the payment window closed before the order was paid' },
        });
        await returnUnits(deps, trx, tenantId, row.order_id, campaign.id);
        const [released] = await releaseAdmissions(trx, campaign.id, [row.order_id], 'timeout');
        if (released)
          done.push({
            admission: released,
            settled: campaign.settledAt !== null || campaign.cancelledAt !== null,
          });
      }
      return done;
    });
    for (const { admission: a, settled } of expired) {
      if (settled) continue;
      await deps.gate.giveBack(a.campaignId, a.customerId, a.quantity, a.idempotencyKey).catch(() => false);
    }
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
