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

/** `rows`: the window's rows with the caller's columns, when the walk found them. */
export type SearchWindow = { ids: string[]; truncated: boolean; rows?: unknown[] };

/**
 * The window and the steps' bounds (tests make them small, to reach every step with a few rows);
 * `probeFirst` runs step 3 before step 2 (a window as small as a page: the walk found every word
 * of 1 row in 100, what is left is mostly rare, which the probe answers at once).
 */
export type WindowLimits = { window: number; walk: number; probe: number; probeFirst?: boolean };
const LIMITS: WindowLimits = { window: RANKED_WINDOW, walk: WALK_BUDGET, probe: PROBE };
/**
 * A newest-first page: its window is the page. The walk reads up to 2,000 newest rows (a page of
 * 20 of a word in 1 row of 100), then the GIN index answers.
 */
export const NEWEST_LIMITS: Omit<WindowLimits, 'window'> = { walk: 2000, probe: PROBE, probeFirst: true };

/**
 * The ids of the newest RANKED_WINDOW exceptions `where` and the tsquery `query` match, found by
 * what the word's frequency makes cheap. Walking the newest index reads rows until the window
 * fills: quick for a common word, every row of the tenant for a rare one. A bitmap scan of the
 * GIN index reads every match: quick for a rare word, a third of the table for a common one. The
 * planner cannot tell them apart (it guesses a phrase like 'sku' <-> '-42' from its most common
 * word), so the steps decide by what they find, each bounded, cheapest for the commonest first:
 * 1. the WALK_BUDGET newest rows in order (a word in 1 row of 20 or more: done);
 * 2. the matches of the last day: the GIN index ANDed with the last_seen range (1 in 50: done);
 * 3. up to PROBE matches through the GIN index alone (a rare word, an id: all of it, done), or
 *    candidates of `probeQuery` when given (see probeQueryOf), rechecked;
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
  probeQuery?: RawBuilder<unknown>,
  columns?: RawBuilder<unknown>,
): Promise<SearchWindow> {
  const { window, walk } = limits;
  const full = (rows: unknown[]) => rows.length > window;
  const done = (rows: Array<{ id: string }>) => ({
    ids: rows.slice(0, window).map((r) => r.id),
    truncated: full(rows),
  });
  // The walk: its inner scan is the newest index whatever the words, so it needs no setting (its
  // bounds are literals: a generic plan must not guess a LIMIT), and it may read the caller's
  // `columns` at once (a page found here costs one statement).
  const walked = await sql<{ id: string }>`
    select ${columns ?? sql`id`} from (
      select * from exceptions.tenant_exceptions where ${where}
      order by last_seen desc, id desc limit ${sql.lit(walk)}
    ) newest
    where search @@ ${query}
    order by last_seen desc, id desc
    limit ${sql.lit(window + 1)}`.execute(trx);
  if (full(walked.rows)) {
    return columns ? { ...done(walked.rows), rows: walked.rows.slice(0, window) } : done(walked.rows);
  }

  // A slice reads the GIN index ANDed with what the filter's indexes and its time range give
  // (bitmaps), planned for its own range (a custom plan sees how narrow it is). The probe needs no
  // setting: its plan is the same for every query (a bitmap of the GIN index, the words unknown
  // to the planner), so it keeps one generic plan per connection.
  let pinned = false;
  const inSlice = async (span: number | undefined) => {
    if (!pinned) {
      await sql`select set_config('plan_cache_mode', 'force_custom_plan', true),
        set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)`.execute(trx);
      pinned = true;
    }
    const since =
      span === undefined ? sql`true` : sql`last_seen >= ${new Date(end - span).toISOString()}::timestamptz`;
    return sql<{ id: string }>`
      select id from exceptions.tenant_exceptions
      where ${where} and search @@ ${query} and ${since}
      order by last_seen desc, id desc
      limit ${window + 1}`.execute(trx);
  };
  const lastDay = () => inSlice(DAY_MS);
  // The probe: up to PROBE candidates through the GIN index (by `probeQuery` when given, a
  // superset of the matches cheaper to look up), how many it read (all there are, if under
  // PROBE), and the newest of them that match.
  const probe = async () => {
    const { rows } = await sql<{ n: number; ids: string[] | null }>`
      with candidates as materialized (
        select id, last_seen, search from exceptions.tenant_exceptions
        where ${where} and search @@ ${probeQuery ?? query}
        limit ${sql.lit(limits.probe)}
      )
      select (select count(*) from candidates)::int as n,
        (select array_agg(id::text order by last_seen desc, id desc) from (
          select id, last_seen from candidates where search @@ ${query}
          order by last_seen desc, id desc limit ${sql.lit(window + 1)}) as newest) as ids`.execute(trx);
    const { n, ids } = rows[0]!;
    return { all: n < limits.probe, rows: (ids ?? []).map((id) => ({ id })) };
  };
  if (limits.probeFirst) {
    const first = await probe();
    if (first.all) return done(first.rows);
    const day = await lastDay();
    if (full(day.rows)) return done(day.rows);
  } else {
    const day = await lastDay();
    if (full(day.rows)) return done(day.rows);
    const second = await probe();
    if (second.all) return done(second.rows);
  }

  let rows: Array<{ id: string }> = [];
  for (const span of [7 * DAY_MS, 30 * DAY_MS, undefined]) {
    ({ rows } = await inSlice(span));
    if (full(rows)) break;
  }
  return done(rows);
}
