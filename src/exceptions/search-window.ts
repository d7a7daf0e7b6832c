import { type RawBuilder, sql } from 'kysely';
import type { ExceptionsTrx } from './tables.ts';

/**
 * A search ranks at most this many matches: the most recently seen. Ranking reads every
 * candidate's vector, so capped, a word in half the table costs what a rare one does. The answer
 * says `truncated` when older matches were left out: narrow the words or the filters (from/to).
 */
export const RANKED_WINDOW = 200;

/** Rows of the newest the first step reads in order: a word in 1 row of 20 fills the window there. */
const WALK_BUDGET = 20 * RANKED_WINDOW;
/** Matches the third step reads through the GIN index alone: a rarer word has all of them there. */
const PROBE = 2000;
const DAY_MS = 86_400_000;

export type SearchWindow = { ids: string[]; truncated: boolean };

/** The window and the steps' bounds (tests make them small, to reach every step with a few rows). */
export type WindowLimits = { window: number; walk: number; probe: number };
const LIMITS: WindowLimits = { window: RANKED_WINDOW, walk: WALK_BUDGET, probe: PROBE };

/**
 * The ids of the newest RANKED_WINDOW exceptions `where` and the tsquery `query` match, found by
 * what the word's frequency makes cheap. Walking the newest index reads rows until the window
 * fills: quick for a common word, every row of the tenant for a rare one. A bitmap scan of the
 * GIN index reads every match: quick for a rare word, a third of the table for a common one. The
 * planner cannot tell them apart (it guesses a phrase like 'sku' <-> '-42' from its most common
 * word), so the steps decide by what they find, each bounded, cheapest for the commonest first:
 * 1. the WALK_BUDGET newest rows in order (a word in 1 row of 20 or more: done);
 * 2. the matches of the last day: the GIN index ANDed with the last_seen range (1 in 50: done);
 * 3. up to PROBE matches through the GIN index alone (a rare word, an id: all of it, done);
 * 4. the matches of the last week, month, then all, until one holds a full window.
 * At 1,000,000 rows over 90 days a step reads at most a few thousand rows.
 * Run in the request's transaction: it switches the planner's scan choices for it (set_config,
 * local to the transaction).
 */
export async function searchWindow(
  trx: ExceptionsTrx,
  where: RawBuilder<unknown>,
  query: RawBuilder<unknown>,
  end: number,
  limits: WindowLimits = LIMITS,
): Promise<SearchWindow> {
  const { window, walk, probe } = limits;
  const full = (rows: unknown[]) => rows.length > window;
  const done = (rows: Array<{ id: string }>) => ({
    ids: rows.slice(0, window).map((r) => r.id),
    truncated: full(rows),
  });
  // Custom plans (the query text is a parameter: a generic plan would guess one frequency for
  // every word); then each step pins the scan it is about.
  await sql`select set_config('plan_cache_mode', 'force_custom_plan', true),
    set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)`.execute(trx);
  const walked = await sql<{ id: string }>`
    select id from (
      select id, last_seen, search from exceptions.tenant_exceptions where ${where}
      order by last_seen desc, id desc limit ${walk}
    ) newest
    where search @@ ${query}
    order by last_seen desc, id desc
    limit ${window + 1}`.execute(trx);
  if (full(walked.rows)) return done(walked.rows);

  await sql`select set_config('enable_bitmapscan', 'on', true), set_config('enable_indexscan', 'off', true)`.execute(
    trx,
  );
  const inSlice = (span: number | undefined) => {
    const since =
      span === undefined ? sql`true` : sql`last_seen >= ${new Date(end - span).toISOString()}::timestamptz`;
    return sql<{ id: string }>`
      select id from exceptions.tenant_exceptions
      where ${where} and search @@ ${query} and ${since}
      order by last_seen desc, id desc
      limit ${window + 1}`.execute(trx);
  };
  const lastDay = await inSlice(DAY_MS);
  if (full(lastDay.rows)) return done(lastDay.rows);

  // The newest of what the probe read, and how much that was (all of the matches, if under PROBE).
  const probed = await sql<{ id: string; n: number }>`
    select id, (count(*) over ())::int as n from (
      select id, last_seen from exceptions.tenant_exceptions
      where ${where} and search @@ ${query}
      limit ${probe}
    ) matched
    order by last_seen desc, id desc
    limit ${window + 1}`.execute(trx);
  if ((probed.rows[0]?.n ?? 0) < probe) return done(probed.rows);

  let rows: Array<{ id: string }> = [];
  for (const span of [7 * DAY_MS, 30 * DAY_MS, undefined]) {
    ({ rows } = await inSlice(span));
    if (full(rows)) break;
  }
  return done(rows);
}
