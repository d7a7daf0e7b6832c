import { sql, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { withTenant } from '../platform/db/index.ts';
import { applyOrderOutcome, outcomeOf } from './admission-outcome.ts';
import { type Admission, toAdmission } from './admission-store.ts';
import { type Campaign, getCampaign } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import type { FlashSalesTables, FlashSalesTrx } from './tables.ts';
import { inRange, inTurn, type Turn } from './turns.ts';

/** The sweep's bounds and grace (LifecycleOptions). */
export type PayingSweepOptions = {
  /** Tenants one pass settles; the next pass goes on after the last one (by id). */
  tenants: number;
  /** A tenant's admissions one pass reads; its next pass goes on after the last one (by order id). */
  batch: number;
  /** How long past its payment deadline a paying admission is left to its order event. */
  graceMs: number;
};

/**
 * Settles admissions left `paying` by an order event that never came. The payment queue marks an
 * admission paying as it starts its order's saga, and only the order's event (order-outcomes.ts)
 * moves it on: one dead-lettered left it paying for ever (the stats showed it paying, `sold` never
 * counted it, a failed order's units never went back to the gate). Past its `pay_by` and the
 * grace (a saga still running, an event still on its way, are left alone), each pass reads the
 * admission's order and, once that is final, applies what its event would have
 * (admission-outcome.ts: one implementation): completed → paid, `sold` rises; failed or cancelled
 * → released with its reason, units back, given back to the gate while the sale runs. An order
 * not final yet is skipped, for a later pass or its event. The event arriving late (requeued)
 * then finds the admission paid or released and changes nothing.
 *
 * Bounded and taking turns as the lifecycle's other passes (turns.ts): tenants by id, and in each
 * tenant its due admissions by order id, so admissions whose order is not final yet never hold a
 * tenant's batch, nor failing tenants the pass, for ever. Each tenant in a transaction of its own
 * (row-level security), a failing one logged and tried again on its next turn.
 */
export function createPayingSweep(deps: FlashSalesDeps, logger: Logger, options: PayingSweepOptions) {
  const { tenants, batch, graceMs } = options;
  /** The tenant id the next pass starts after; undefined: from the first. */
  let tenantsAfter: string | undefined;
  /**
   * Per tenant, the order id its next batch starts after (absent: from the first). At most one
   * entry per tenant, forgotten once a batch wraps; a stale one only starts a turn elsewhere.
   */
  const rowsAfter = new Map<string, string>();
  // A literal status: the partial index admissions_paying (migration 0050) serves the scans.
  const due = sql`status = 'paying' and pay_by <= now() - make_interval(secs => ${graceMs / 1000})`;

  async function settleTenant(tenantId: string): Promise<Admission[]> {
    return withTenant(deps.db, tenantId, async (anyTrx) => {
      const trx = anyTrx as FlashSalesTrx;
      const turn = await inTurn(
        rowsAfter.get(tenantId),
        batch,
        async (range, limit) => {
          const { rows } = await sql<{ order_id: string; campaign_id: string }>`
            select order_id, campaign_id from flash_sales.admissions
            where ${due} ${inRange('order_id', range)}
            order by order_id limit ${limit}`.execute(trx);
          return rows;
        },
        (row) => row.order_id,
      );
      // The turn moves on even when this batch fails below: its rows never hold the next one.
      if (turn.next === undefined) rowsAfter.delete(tenantId);
      else rowsAfter.set(tenantId, turn.next);
      if (turn.rows.length === 0) return [];
      // Locks in the order a sale's cancel takes them (campaign, then its admissions, then
      // orders), campaigns in id order, as closeWindows does (lifecycle.ts).
      const campaigns = new Map<string, Campaign>();
      for (const id of [...new Set(turn.rows.map((r) => r.campaign_id))].sort())
        campaigns.set(id, await getCampaign(trx, id, true));
      // Still paying once locked; one an event is handling right now is its event's.
      const ids = turn.rows.map((r) => r.order_id);
      const locked = await trx
        .selectFrom('flash_sales.admissions')
        .selectAll()
        .where('order_id', 'in', ids)
        .where('status', '=', 'paying')
        .orderBy('order_id')
        .forUpdate()
        .skipLocked()
        .execute();
      const back: Admission[] = [];
      for (const admission of locked.map(toAdmission)) {
        const order = await deps.orders.get(trx, tenantId, admission.orderId, { lock: true });
        const outcome = order && outcomeOf(order);
        if (!outcome) continue; // Being paid still (or no order): a later pass, or its event, decides.
        const given = await applyOrderOutcome(
          deps,
          trx,
          admission,
          outcome,
          campaigns.get(admission.campaignId),
        );
        if (given) back.push(given);
      }
      return back;
    });
  }

  return {
    /**
     * In the lifecycle tick's transaction (no transaction of its own): the next tenants with
     * admissions paying past the grace, and where the pass after this one starts.
     */
    due(trx: Transaction<FlashSalesTables>): Promise<Turn<string>> {
      return inTurn(
        tenantsAfter,
        tenants,
        async (range, limit) => {
          const { rows } = await sql<{ tenant_id: string }>`
            select distinct tenant_id from flash_sales.admissions
            where ${due} ${inRange('tenant_id', range)}
            order by tenant_id limit ${limit}`.execute(trx);
          return rows.map((r) => r.tenant_id);
        },
        (tenantId) => tenantId,
      );
    },
    /** One pass over the tenants `due` found, each settled on its own. */
    async run(turn: Turn<string>): Promise<void> {
      tenantsAfter = turn.next;
      for (const tenantId of turn.rows) {
        const back = await settleTenant(tenantId).catch((error) => {
          logger.warn({ err: error, tenantId }, 'flash-sales: settling paying admissions failed');
          return [];
        });
        // After the commit, by the admission's key: a retry (or the late event) gives nothing twice.
        for (const a of back) {
          await deps.gate
            .release(a.campaignId, a.customerId, a.quantity, a.idempotencyKey)
            .catch((error) =>
              logger.warn(
                { err: error, campaignId: a.campaignId },
                'flash-sales: units not given back to the gate; reconciliation will',
              ),
            );
        }
      }
    },
  };
}
