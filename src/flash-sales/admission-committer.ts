import type { Logger } from 'pino';
import { databaseProblem, isTransientConflict, withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError, type RequestFingerprint } from '../platform/http/index.ts';
import { commitBatch } from './admission-batch.ts';
import type { Admission } from './admission-store.ts';
import type { Breakers } from './breakers.ts';
import type { FlashSalesDeps } from './deps.ts';
import { createShortfallMetric, PoolShort } from './pool-shortfall.ts';
import { reconcileCampaign } from './reconcile.ts';
import type { FlashSalesTrx } from './tables.ts';

export { limitReached, orderHoldSeconds, soldOut } from './admission-batch.ts';

/** An attempt the gate admitted, to be made the record. */
export type Candidate = {
  tenantId: string;
  campaignId: string;
  customerId: string;
  key: string;
  /** The attempt's fingerprint (its hash is stored with the admission). */
  request: RequestFingerprint;
  orderId: string;
  quantity: number;
  payment: { provider: string; token: string } | undefined;
  shippingAddressId: string | undefined;
  meta: EventMeta;
};

/**
 * What the record made of it: admitted (its order now exists), a duplicate (the admission its key
 * made earlier), or refused by PostgreSQL's own check. `gateSettled`: the committer has already
 * set the gate right for this attempt (a batch that found the gate ahead of the record gives back
 * its refused attempts and reconciles the gate before answering): its caller gives nothing back.
 */
export type Committed = (
  | { outcome: 'admitted'; admission: Admission }
  | { outcome: 'duplicate'; admission: Admission }
  | { outcome: 'refused'; error: AppError }
) & { gateSettled?: boolean };

type Waiter = { candidate: Candidate; resolve(c: Committed): void; reject(e: unknown): void };

/** Most attempts one transaction takes. */
const MAX_BATCH = 256;

/**
 * Group commit of admissions, as the WAL's writes: per campaign, the attempts that arrive while a
 * transaction is out share the next one, which locks the campaign's row, re-checks every attempt
 * against the record (units left, the per-customer limit, its key), creates the orders and moves
 * their units from the pool into each order's reservation, and raises the campaign's counter, in
 * about ten statements whatever the batch's size. Each caller is answered when that commit
 * returns: a 202 means the order exists.
 */
export function createAdmissionCommitter(
  deps: FlashSalesDeps,
  breakers: Breakers,
  logger: Logger,
  onCommitted: (tenantId: string, campaignId: string, admitted: Admission[]) => void,
) {
  const queues = new Map<string, Waiter[]>();
  const busy = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  const shortfall = createShortfallMetric(deps.ctx.metrics.registry);

  /**
   * The gate admitted attempts the record refused as sold out (it counts units the record does
   * not have: a short pool, a rebuild that raced a commit): before they are answered, their units
   * go back by their keys and the gate is reconciled with the record (reconcile.ts), so the next
   * attempts meet the sold-out answer at the gate. Answers marked settled; on failure unmarked
   * (each caller gives its units back, and the periodic reconciliation repairs the rest).
   */
  async function settleGate(tenantId: string, campaignId: string, batch: Waiter[], answers: Committed[]) {
    try {
      await Promise.all(
        batch.map(({ candidate: c }, i) =>
          answers[i]!.outcome === 'refused'
            ? deps.gate.giveBack(campaignId, c.customerId, c.quantity, c.key)
            : undefined,
        ),
      );
      await reconcileCampaign(deps, tenantId, campaignId);
      return answers.map((a) => (a.outcome === 'admitted' ? a : { ...a, gateSettled: true }));
    } catch (error) {
      logger.warn({ err: error, campaignId }, 'flash-sales: the gate could not be reconciled after a batch');
      return answers;
    }
  }

  async function flush(campaignId: string): Promise<void> {
    const waiting = queues.get(campaignId) ?? [];
    queues.delete(campaignId);
    const batch = waiting.splice(0, MAX_BATCH);
    if (waiting.length > 0) queues.set(campaignId, waiting);
    busy.add(campaignId);
    try {
      const tenantId = batch[0]!.candidate.tenantId;
      // Taken on another connection while the batch's transaction locks and reads (awaited where
      // the orders are made); PGlite's one session must answer them first.
      const numbers = Promise.all(batch.map(() => deps.orders.takeNumber(tenantId)));
      numbers.catch(() => {}); // awaited in commitBatch
      if (deps.ctx.db.kind === 'pglite') await numbers;
      let short = 0;
      const result = await breakers.run('database', async () => {
        // A transaction undone by a concurrent one (the sale's pool shares its item's row with
        // other sales and checkouts: isTransientConflict) is run again, as the inventory's
        // batcher does. One that found the pool short runs again with the record lowered to it.
        for (let conflicts = 0, measures = 0; ; ) {
          try {
            return await withTenant(deps.db, tenantId, (trx) =>
              commitBatch(
                deps,
                trx as FlashSalesTrx,
                campaignId,
                batch.map((w) => w.candidate),
                numbers,
                short,
              ),
            );
          } catch (error) {
            if (error instanceof PoolShort && ++measures <= 3) {
              short = error.units;
              continue;
            }
            if (!isTransientConflict(error) || ++conflicts >= 3) throw error;
          }
        }
      });
      let answers = result.answers;
      if (result.units.to < result.units.from) {
        shortfall.inc(result.units.from - result.units.to);
        logger.error(
          { campaignId, units: result.units, shortBy: result.units.from - result.units.to },
          "flash-sales: the sale's pool held fewer units than its record; the record was lowered to the pool and the attempts past it answered sold out",
        );
      }
      const soldOutRefused = answers.some((a) => a.outcome === 'refused' && a.error.code === 'SOLD_OUT');
      if (soldOutRefused || result.units.to < result.units.from) {
        answers = await settleGate(tenantId, campaignId, batch, answers);
      }
      for (const [i, w] of batch.entries()) w.resolve(answers[i]!);
      const admitted = answers.flatMap((a) => (a.outcome === 'admitted' ? [a.admission] : []));
      if (admitted.length > 0) onCommitted(tenantId, campaignId, admitted);
    } catch (error) {
      logger.warn(
        { err: error, campaignId, attempts: batch.length },
        'flash-sales: an admission batch failed',
      );
      const problem =
        databaseProblem(error) ??
        (error instanceof AppError
          ? error
          : new AppError('SERVICE_UNAVAILABLE', 'admission could not be recorded', { retryAfterSeconds: 1 }));
      for (const w of batch) w.reject(problem);
    } finally {
      busy.delete(campaignId);
      if (queues.has(campaignId)) track(flush(campaignId));
    }
  }

  const track = (p: Promise<void>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  return {
    /** Resolves once the attempt's transaction committed (or was refused); rejects when it could not be recorded. */
    submit(candidate: Candidate): Promise<Committed> {
      return new Promise<Committed>((resolve, reject) => {
        const queue = queues.get(candidate.campaignId);
        if (queue) queue.push({ candidate, resolve, reject });
        else queues.set(candidate.campaignId, [{ candidate, resolve, reject }]);
        if (!busy.has(candidate.campaignId)) track(flush(candidate.campaignId));
      });
    },
    /** Attempts waiting for a transaction (the stats' queue depth). */
    depth(): number {
      let n = 0;
      for (const q of queues.values()) n += q.length;
      return n;
    },
    async close(): Promise<void> {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
