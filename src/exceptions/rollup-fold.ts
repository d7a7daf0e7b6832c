import { sql } from 'kysely';
import { withSystem, withTenant } from '../platform/db/index.ts';
import type { ExceptionsDeps } from './deps.ts';

/** How often the summary's rollup is folded. (Default: 5 seconds) */
export const FOLD_INTERVAL_MS = 5_000;

export type RollupFolder = {
  /** Folds now (at once, then every FOLD_INTERVAL_MS); returns the rows folded. */
  fold(): Promise<number>;
  start(): void;
  stop(): Promise<void>;
};

/**
 * Keeps the summary's rollup small (migration 0034) and the groups' counts current (0036): every
 * statement that changes exceptions appends its counts as new rows, a capture its group credits,
 * and each marks its tenant in exceptions.rollup_dirty; this job takes the marks (as the owner,
 * across tenants) and, as each marked tenant, folds its appended rows into one row per key
 * (exceptions.fold_counts) and adds its credits to its groups (exceptions.fold_group_credits). Readers add up a key's rows, so a fold
 * changes no answer, and one that fails leaves the rows counted as they are (the tenant is marked
 * again, for the next run). Every process runs it; folds of the same rows by two processes count
 * nothing twice (see the migration).
 */
export function createRollupFolder(deps: Pick<ExceptionsDeps, 'ctx' | 'db'>): RollupFolder {
  const { db } = deps;
  const log = deps.ctx.logger.child({ component: 'exceptions-rollup' });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;

  const foldAll = async (): Promise<number> => {
    const { rows: marked } = await withSystem(db, (trx) =>
      sql<{ tenant_id: string }>`
        with taken as (delete from exceptions.rollup_dirty returning tenant_id)
        select distinct tenant_id from taken`.execute(trx),
    );
    let folded = 0;
    for (const { tenant_id: tenantId } of marked) {
      try {
        folded += await withTenant(db, tenantId, async (trx) => {
          const { rows } = await sql<{ n: string }>`select exceptions.fold_counts() as n`.execute(trx);
          await sql`select exceptions.fold_group_credits()`.execute(trx);
          return Number(rows[0]!.n);
        });
      } catch (error) {
        log.error(
          { err: error, tenantId },
          'could not fold the rollup of a tenant; it is marked for the next run',
        );
        await withTenant(db, tenantId, (trx) =>
          sql`insert into exceptions.rollup_dirty (tenant_id) values (${tenantId})`.execute(trx),
        ).catch(() => undefined);
      }
    }
    return folded;
  };

  const fold = (): Promise<number> => {
    running ??= foldAll().finally(() => {
      running = undefined;
    });
    return running;
  };

  return {
    fold,
    start() {
      timer = setInterval(() => {
        fold().catch((error: unknown) => log.error({ err: error }, 'rollup fold failed'));
      }, FOLD_INTERVAL_MS);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running?.catch(() => undefined);
    },
  };
}
