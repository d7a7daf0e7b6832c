import type { Kysely } from 'kysely';
import { withSystem } from '../platform/db/index.ts';
import type { EventBus } from '../platform/events/index.ts';
import type { Logger } from '../platform/observability/index.ts';
import { runBatch } from './reservation-batch.ts';
import { nextExpiry, tenantsWithExpired } from './reservation-store.ts';
import type { InventoryTables } from './tables.ts';

export type SweeperOptions = {
  /** The safety sweep: how often to look even when no timer is due. (Default: 5,000 ms) */
  intervalMs?: number;
  /** Reservations expired per transaction at most. (Default: 200) */
  batch?: number;
  /** Told how many reservations each sweep transaction expired (metrics). */
  onExpired?: (count: number) => void;
};

export type ExpirySweeper = {
  start(): void;
  /** A reservation of this process now expires at `at`: wake up then if that is sooner. */
  notice(at: Date): void;
  /** Expires every reservation past its expiry now; returns how many. */
  sweep(): Promise<number>;
  stop(): Promise<void>;
};

/** Never sleep less than this between sweeps, so clock skew between Node and the database cannot spin. */
const MIN_DELAY_MS = 50;

/** Due tenants a round of the sweep takes, one batch each. */
const TENANTS_PER_ROUND = 50;

/**
 * Expires reservations by themselves: a timer set to the next expiry (this process's own
 * reservations re-arm it as they are made or extended), plus a periodic safety sweep that also
 * catches what other processes reserved and what a crashed process left behind. Each sweep
 * finds the tenants with due reservations, then per tenant locks them with
 * `for update skip locked` and expires them in one batch transaction (ledger, events), so any
 * number of processes can sweep at once without waiting on, or double-expiring, each other.
 * Tenants take turns: a round takes one batch of each due tenant, starting after the tenant the
 * last round ended with, so one tenant's backlog never holds back another's expiries.
 */
export function createExpirySweeper(
  db: Kysely<InventoryTables>,
  events: EventBus,
  logger: Logger,
  options: SweeperOptions = {},
): ExpirySweeper {
  const intervalMs = options.intervalMs ?? 5000;
  const batch = options.batch ?? 200;
  let timer: NodeJS.Timeout | undefined;
  let wakeAt = Number.POSITIVE_INFINITY;
  let running: Promise<number> | undefined;
  let again = false;
  let stopped = true;

  const arm = (at: number) => {
    if (stopped) return;
    const target = Math.max(at, Date.now() + MIN_DELAY_MS);
    if (timer && target >= wakeAt) return;
    if (timer) clearTimeout(timer);
    const delay = Math.min(target - Date.now(), intervalMs);
    wakeAt = Date.now() + delay;
    timer = setTimeout(tick, delay);
    timer.unref();
  };

  const tick = () => {
    timer = undefined;
    wakeAt = Number.POSITIVE_INFINITY;
    sweep()
      .catch((error: unknown) => logger.warn({ err: error }, 'inventory: reservation sweep failed'))
      .finally(async () => {
        if (stopped) return;
        try {
          const next = await withSystem(db, (trx) => nextExpiry(trx));
          arm(next ? next.getTime() : Date.now() + intervalMs);
        } catch (error) {
          logger.warn({ err: error }, 'inventory: next reservation expiry unknown');
          arm(Date.now() + intervalMs);
        }
      });
  };

  // The last tenant swept: the next round starts after it, so tenants take turns.
  let cursor: string | null = null;

  /** The due tenants of the next round: those after the cursor, then from the start up to it. */
  const dueTenants = async (): Promise<string[]> => {
    const after = await withSystem(db, (trx) => tenantsWithExpired(trx, cursor, TENANTS_PER_ROUND));
    if (after.length === TENANTS_PER_ROUND || cursor === null) return after;
    const from = await withSystem(db, (trx) =>
      tenantsWithExpired(trx, null, TENANTS_PER_ROUND - after.length),
    );
    return [...after, ...from.filter((tenantId) => tenantId <= cursor! && !after.includes(tenantId))];
  };

  const sweepAll = async (): Promise<number> => {
    let expired = 0;
    for (;;) {
      const tenants = await dueTenants();
      let round = 0;
      // One batch per due tenant per round: a tenant's backlog waits its turn behind the others.
      for (const tenantId of tenants) {
        cursor = tenantId;
        // One tenant whose batch fails must not hold back the expiry of every tenant after it.
        try {
          const result = await runBatch(db, events, tenantId, [], batch);
          round += result.answers.length;
          if (result.answers.length > 0) options.onExpired?.(result.answers.length);
        } catch (error) {
          logger.warn({ err: error, tenantId }, 'inventory: reservation sweep of a tenant failed');
        }
      }
      expired += round;
      // Nothing taken: done, or the rest is held by other sweepers (skip locked).
      if (round === 0) return expired;
    }
  };

  const sweep = async (): Promise<number> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let total = 0;
      do {
        again = false;
        total += await sweepAll();
      } while (again);
      return total;
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  return {
    start() {
      stopped = false;
      arm(Date.now());
    },
    notice(at) {
      arm(at.getTime());
    },
    sweep,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running?.catch(() => {});
    },
  };
}
