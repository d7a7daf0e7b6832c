import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { WalTables } from '../../tables.ts';

type Plan = {
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: Plan[];
};

class RollBack extends Error {}

/**
 * Rows a statement reads from the indexes whose names start with `indexPrefix`, counted by
 * EXPLAIN ANALYZE (rows the scans returned or a filter dropped, over all their loops; with
 * `scans`, how many times it scanned them instead), with the
 * queue's planner settings (lease.ts, withQueuePlan), in a transaction rolled back after: a test
 * can say how much of a queue a statement walks without timing it.
 */
export async function rowsReadBy(
  db: Kysely<WalTables>,
  statement: RawBuilder<unknown>,
  indexPrefix: string,
  what: 'rows' | 'scans' = 'rows',
): Promise<number> {
  const own = (plan: Plan) =>
    what === 'scans'
      ? (plan['Actual Loops'] ?? 1)
      : ((plan['Actual Rows'] ?? 0) + (plan['Rows Removed by Filter'] ?? 0)) * (plan['Actual Loops'] ?? 1);
  const count = (plan: Plan): number =>
    (plan['Index Name']?.startsWith(indexPrefix) ? own(plan) : 0) +
    (plan.Plans ?? []).reduce((n, p) => n + count(p), 0);
  let read = -1;
  await db
    .transaction()
    .execute(async (trx) => {
      await sql`select set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)`.execute(
        trx,
      );
      const { rows } = await sql<{
        'QUERY PLAN': unknown;
      }>`explain (analyze, format json) ${statement}`.execute(trx);
      const raw = rows[0]?.['QUERY PLAN'];
      const doc = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { Plan: Plan }[];
      read = count(doc[0]?.Plan as Plan);
      throw new RollBack();
    })
    .catch((error: unknown) => {
      if (!(error instanceof RollBack)) throw error;
    });
  return read;
}
