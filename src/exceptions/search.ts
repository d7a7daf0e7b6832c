import { type RawBuilder, sql } from 'kysely';
import {
  cursorId,
  cursorText,
  encodeCursor,
  invalidCursor,
  isStorableTimestamp,
} from '../platform/http/index.ts';
import { exactTime, VIEW_COLUMNS } from './exception-queries.ts';
import { type ExceptionView, toView, type ViewedRow } from './exception-view.ts';
import { type ExceptionFilter, filterSql } from './filters.ts';
import { NEWEST_LIMITS, searchWindow } from './search-window.ts';
import type { ExceptionsTrx } from './tables.ts';

/** The earliest end of the window's slices: the longest (30 days) still starts in the year 0001. */
const EARLIEST_END_MS = Date.parse('0001-02-01T00:00:00Z');

/**
 * A cheaper query for the GIN probe of `q` (searchWindow's step 3), or undefined. An id such as
 * CUST-4321 is stored split in two lexemes, 'cust' (in every row) and '-4321' (in a few): the GIN
 * index answers the phrase by skipping through the common word's whole posting tree, some 5 ms at
 * 1,000,000 rows. When every word of `q` must be present (no "phrases", or, -not), the lexemes
 * with a digit alone find a superset of the matches (a digit's lexeme is the same in 'simple' and
 * 'english'), which the probe rechecks with the whole query.
 */
export function probeQueryOf(q: string, full: RawBuilder<unknown>): RawBuilder<unknown> | undefined {
  const words = q.trim().split(/\s+/);
  const plain = words.every((w) => !w.startsWith('-') && !w.includes('"') && w.toLowerCase() !== 'or');
  if (!plain || !/[0-9]/.test(q)) return undefined;
  return sql`coalesce((select to_tsquery('simple', string_agg('''' || l || '''', ' & '))
    from unnest(tsvector_to_array(to_tsvector('simple', ${q}))) as l
    where l ~ '[0-9]' and l !~ '[''\\\\]'), ${full})`;
}

/** How a search orders its matches: last seen newest first, or ranked within the newest 200. */
export type SearchSort = 'newest' | 'relevance';

/** Where the next page of a search starts: (rank, for relevance), last seen (exact) and id of the last row shown. */
export type SearchCursor = { rank?: number | undefined; lastSeen: string; id: string };

export function readSearchCursor(text: string, sort: SearchSort): SearchCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(cursorText(text));
  } catch (error) {
    if (error instanceof SyntaxError) throw invalidCursor('not JSON');
    throw error;
  }
  const { r, t, i } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<
    string,
    unknown
  >;
  // A rank is a real (ts_rank): one so small a real rounds it to 0 is none we issued, and
  // PostgreSQL refuses it (out of range for type real).
  if (
    sort === 'relevance' &&
    (typeof r !== 'number' || !Number.isFinite(r) || r < 0 || r > 1e6 || (r !== 0 && Math.fround(r) === 0))
  )
    throw invalidCursor('bad rank');
  if (sort === 'newest' && r !== undefined) throw invalidCursor('a cursor of another sort');
  if (typeof t !== 'string' || !isStorableTimestamp(t)) throw invalidCursor('bad time');
  return { rank: r as number | undefined, lastSeen: t, id: cursorId(i) };
}

export type SearchHit = ExceptionView & { rank: number };
export type SearchPage = { items: SearchHit[]; nextCursor: string | null; truncated: boolean };

/**
 * Full text over the stored `search` vector (ids, customer, order and location in 'simple', the
 * reason in 'english', the payload's strings and numbers in 'simple'): the words as
 * websearch_to_tsquery reads them ("quoted phrases", or, -not), in both configurations, so a
 * stemmed word ("timeouts") and an exact id ("TX-1001") both find. The filter applies first.
 * - `newest` (the default, as Sentry lists issues by last seen): every match, last seen newest
 *   first, by keyset pages; a page costs what finding its own matches does (searchWindow with the
 *   page as its window), whatever the number of matches. `rank` is shown, not sorted on.
 * - `relevance`: ranked by ts_rank (ids weigh most, then the reason, then the payload), then last
 *   seen, within the RANKED_WINDOW newest matches (`truncated` when older ones were left out).
 */
export async function searchExceptions(
  trx: ExceptionsTrx,
  tenantId: string,
  q: string,
  filter: ExceptionFilter,
  page: { limit: number; after?: SearchCursor | undefined; sort?: SearchSort | undefined },
): Promise<SearchPage> {
  // A scalar subquery: parsed once per statement, whatever the plan. Inline, a generic plan (the
  // walk's, once it is cached) would parse the words again for every row it reads.
  const query = sql`(select websearch_to_tsquery('simple', ${q}) || websearch_to_tsquery('english', ${q}))`;
  // The window's time slices end here; they reach a month back, never before the year 0001 (a `to`
  // of year 0001 with an offset: PostgreSQL would refuse the slice's bound, a 500).
  const end = filter.to !== undefined ? Math.max(Date.parse(filter.to), EARLIEST_END_MS) : Date.now();
  const newest = page.sort !== 'relevance';
  const after = page.after;
  const where = filterSql(tenantId, filter);
  const rank = sql`ts_rank(search, ${query})`;
  type Row = ViewedRow & { rank: number; exact_last_seen: string };
  const columns = sql`${VIEW_COLUMNS}, ${rank} as rank, ${exactTime(sql.ref('last_seen'))} as exact_last_seen`;
  const window = newest
    ? await searchWindow(
        trx,
        after
          ? sql`${where} and (last_seen, id) < (${after.lastSeen}::timestamptz, ${after.id}::uuid)`
          : where,
        query,
        end,
        { ...NEWEST_LIMITS, window: page.limit },
        probeQueryOf(q, query),
        columns,
      )
    : await searchWindow(trx, where, query, end, undefined, probeQueryOf(q, query));
  const order = newest ? sql`last_seen desc, id desc` : sql`rank desc, last_seen desc, id desc`;
  const past =
    !newest && after
      ? sql`(${rank}, last_seen, id) < (${after.rank ?? 0}::real, ${after.lastSeen}::timestamptz, ${after.id}::uuid)`
      : sql`true`;
  const rows =
    (window.rows as Row[] | undefined) ??
    (
      await sql<Row>`
        select ${columns}
        from exceptions.exceptions
        where tenant_id = ${tenantId} and id = any(${window.ids}::uuid[]) and ${past}
        order by ${order}
        limit ${page.limit + 1}`.execute(trx)
    ).rows;
  const shown = rows.slice(0, page.limit);
  const last = shown.at(-1);
  const more = newest ? window.truncated : rows.length > page.limit;
  const cursor = (row: typeof last & object) =>
    encodeCursor(
      JSON.stringify(
        newest
          ? { t: row.exact_last_seen, i: row.id }
          : { r: Number(row.rank), t: row.exact_last_seen, i: row.id },
      ),
    );
  return {
    items: shown.map((row) => ({ ...toView(row), rank: Number(row.rank) })),
    nextCursor: more && last ? cursor(last) : null,
    truncated: newest ? false : window.truncated,
  };
}
