import { sql } from 'kysely';
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
import { searchWindow } from './search-window.ts';
import type { ExceptionsTrx } from './tables.ts';

/** Where the next page of a search starts: rank, last seen (exact) and id of the last row shown. */
export type SearchCursor = { rank: number; lastSeen: string; id: string };

export function readSearchCursor(text: string): SearchCursor {
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
  if (typeof r !== 'number' || !Number.isFinite(r) || r < 0 || r > 1e6) throw invalidCursor('bad rank');
  if (typeof t !== 'string' || !isStorableTimestamp(t)) throw invalidCursor('bad time');
  return { rank: r, lastSeen: t, id: cursorId(i) };
}

export type SearchHit = ExceptionView & { rank: number };
export type SearchPage = { items: SearchHit[]; nextCursor: string | null; truncated: boolean };

/**
 * Full text over the stored `search` vector (ids, customer, order and location in 'simple', the
 * reason in 'english', the payload's strings and numbers in 'simple'): the words as
 * websearch_to_tsquery reads them ("quoted phrases", or, -not), in both configurations, so a
 * stemmed word ("timeouts") and an exact id ("TX-1001") both find. Ranked by ts_rank (ids weigh
 * most, then the reason, then the payload), then last seen, within the RANKED_WINDOW newest
 * matches; the filter applies before the window.
 */
export async function searchExceptions(
  trx: ExceptionsTrx,
  tenantId: string,
  q: string,
  filter: ExceptionFilter,
  page: { limit: number; after?: SearchCursor | undefined },
): Promise<SearchPage> {
  const query = sql`(websearch_to_tsquery('simple', ${q}) || websearch_to_tsquery('english', ${q}))`;
  const end = filter.to !== undefined ? Date.parse(filter.to) : Date.now();
  const window = await searchWindow(trx, filterSql(tenantId, filter), query, end);
  const after = page.after
    ? sql`(ts_rank(search, ${query}), last_seen, id) < (${page.after.rank}::real, ${page.after.lastSeen}::timestamptz, ${page.after.id}::uuid)`
    : sql`true`;
  const { rows } = await sql<ViewedRow & { rank: number; exact_last_seen: string }>`
    select ${VIEW_COLUMNS}, ts_rank(search, ${query}) as rank, ${exactTime(sql.ref('last_seen'))} as exact_last_seen
    from exceptions.exceptions
    where tenant_id = ${tenantId} and id = any(${window.ids}::uuid[]) and ${after}
    order by rank desc, last_seen desc, id desc
    limit ${page.limit + 1}`.execute(trx);
  const shown = rows.slice(0, page.limit);
  const last = shown.at(-1);
  return {
    items: shown.map((row) => ({ ...toView(row), rank: Number(row.rank) })),
    nextCursor:
      rows.length > page.limit && last
        ? encodeCursor(JSON.stringify({ r: Number(last.rank), t: last.exact_last_seen, i: last.id }))
        : null,
    truncated: window.truncated,
  };
}
