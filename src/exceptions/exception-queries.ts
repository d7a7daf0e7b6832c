import { type RawBuilder, sql } from 'kysely';
import { isoTime } from '../platform/db/index.ts';
import {
  cursorId,
  cursorText,
  encodeCursor,
  invalidCursor,
  isStorableTimestamp,
} from '../platform/http/index.ts';
import {
  type ExceptionRow,
  type ExceptionView,
  toView,
  type ViewedRow,
  viewColumns,
} from './exception-view.ts';
import { type ExceptionFilter, filterSql } from './filters.ts';
import type { ExceptionsTrx } from './tables.ts';

/** Every column the view shows, unqualified. */
export const VIEW_COLUMNS = viewColumns();

/**
 * Severity as a number, most severe highest. Migration 0031's index exceptions_by_severity is on
 * this very expression: change one, change both.
 */
export const SEVERITY_RANK = sql`(case severity when 'CRITICAL' then 3 when 'HIGH' then 2 when 'MEDIUM' then 1 else 0 end)`;

/** A timestamp as exact text (microseconds, UTC): a cursor must not round to JavaScript's milliseconds. */
export const exactTime = (column: RawBuilder<unknown>) =>
  sql`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export const SORT_KEYS = ['lastSeen', 'firstSeen', 'severity', 'occurrences'] as const;
export const SORTS = SORT_KEYS.flatMap((k) => [`-${k}`, k]) as Sort[];
export type Sort = (typeof SORT_KEYS)[number] | `-${(typeof SORT_KEYS)[number]}`;

type KeyPart = { expr: RawBuilder<unknown>; kind: 'time' | 'int' };
const time = (column: string): KeyPart => ({ expr: sql.ref(column), kind: 'time' });

/** Each sort's key, before the id that breaks ties; each is an index of migration 0031 after tenant_id. */
const KEYS: Record<(typeof SORT_KEYS)[number], KeyPart[]> = {
  lastSeen: [time('last_seen')],
  firstSeen: [time('first_seen')],
  severity: [{ expr: SEVERITY_RANK, kind: 'int' }, time('last_seen')],
  occurrences: [{ expr: sql.ref('occurrences'), kind: 'int' }, time('last_seen')],
};

/** The largest integer key a cursor may hold: keyset() compares it as an int (occurrences is one). */
const MAX_INT = 2_147_483_647;

/** Where a page starts: the key of the last row shown, and its id. */
export type ListCursor = { values: Array<string | number>; id: string };
export type ListPage = { limit: number; sort: Sort; after?: ListCursor | undefined };

const keysOf = (sort: Sort) => KEYS[sort.replace('-', '') as (typeof SORT_KEYS)[number]];

/** The cursor of a page of `sort`, or 400 INVALID_CURSOR (one of another sort included). */
export function readListCursor(text: string, sort: Sort): ListCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(cursorText(text));
  } catch (error) {
    if (error instanceof SyntaxError) throw invalidCursor('not JSON');
    throw error;
  }
  const { s, k, i } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<
    string,
    unknown
  >;
  if (s !== sort) throw invalidCursor(`it pages another sort than ${sort}`);
  const keys = keysOf(sort);
  if (!Array.isArray(k) || k.length !== keys.length) throw invalidCursor('bad key');
  keys.forEach((part, n) => {
    const v = k[n];
    const ok =
      part.kind === 'time'
        ? typeof v === 'string' && isStorableTimestamp(v)
        : typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_INT;
    if (!ok) throw invalidCursor('bad key');
  });
  return { values: k as Array<string | number>, id: cursorId(i) };
}

const writeCursor = (sort: Sort, values: unknown, id: string) =>
  encodeCursor(JSON.stringify({ s: sort, k: values, i: id }));

/** The row comparison of a keyset page (all keys one direction, so one index scan serves it). */
function keyset(sort: Sort, after: ListCursor | undefined): RawBuilder<unknown> {
  if (!after) return sql`true`;
  const keys = keysOf(sort);
  const left = sql.join([...keys.map((p) => p.expr), sql.ref('id')]);
  const right = sql.join([
    ...keys.map((p, n) =>
      p.kind === 'time' ? sql`${after.values[n]}::timestamptz` : sql`${after.values[n]}::int`,
    ),
    sql`${after.id}::uuid`,
  ]);
  return sort.startsWith('-') ? sql`(${left}) < (${right})` : sql`(${left}) > (${right})`;
}

function orderBy(sort: Sort): RawBuilder<unknown> {
  const dir = sort.startsWith('-') ? sql`desc` : sql`asc`;
  return sql.join([...keysOf(sort).map((p) => sql`${p.expr} ${dir}`), sql`id ${dir}`]);
}

/** The key of a row as JSON, exact (times to the microsecond), for its cursor. */
const cursorKey = (sort: Sort) =>
  sql`json_build_array(${sql.join(keysOf(sort).map((p) => (p.kind === 'time' ? exactTime(p.expr) : p.expr)))})`;

/** One page of the tenant's exceptions matching the filter, in the sort's order. */
export async function listExceptions(
  trx: ExceptionsTrx,
  tenantId: string,
  filter: ExceptionFilter,
  page: ListPage,
): Promise<{ items: ExceptionView[]; nextCursor: string | null }> {
  const { rows } = await sql<ViewedRow & { cursor_key: unknown }>`
    select ${VIEW_COLUMNS}, ${cursorKey(page.sort)} as cursor_key
    from exceptions.exceptions
    where ${filterSql(tenantId, filter)} and ${keyset(page.sort, page.after)}
    order by ${orderBy(page.sort)}
    limit ${page.limit + 1}`.execute(trx);
  const shown = rows.slice(0, page.limit);
  const last = shown.at(-1);
  return {
    items: shown.map(toView),
    nextCursor: rows.length > page.limit && last ? writeCursor(page.sort, last.cursor_key, last.id) : null,
  };
}

/** The detail shows at most this many retries (the retry limit is at most 100) and audit entries (the latest). */
const MAX_RETRIES = 100;
const MAX_AUDIT = 500;

export type RetryView = {
  attempt: number;
  action: string;
  status: string;
  outcome: string | null;
  requestedBy: string;
  startedAt: string;
  finishedAt: string | null;
};

export type AuditView = {
  action: string;
  actor: string;
  note: string | null;
  details: Record<string, unknown> | null;
  at: string;
};

export type ExceptionDetailRows = { row: ExceptionRow; retries: RetryView[]; audit: AuditView[] };

/** The exception with its retries (newest first) and its latest audit entries (oldest first); undefined when none. */
export async function findExceptionDetail(
  trx: ExceptionsTrx,
  tenantId: string,
  transactionId: string,
): Promise<ExceptionDetailRows | undefined> {
  const row = await trx
    .selectFrom('exceptions.exceptions')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('transaction_id', '=', transactionId)
    .executeTakeFirst();
  if (!row) return undefined;
  const retries = await trx
    .selectFrom('exceptions.retry_attempts')
    .select(['attempt', 'action', 'status', 'outcome', 'requested_by', 'started_at', 'finished_at'])
    .where('exception_id', '=', row.id)
    .orderBy('attempt', 'desc')
    .limit(MAX_RETRIES)
    .execute();
  const audit = await trx
    .selectFrom('exceptions.audit')
    .select(['action', 'actor', 'note', 'details', 'at'])
    .where('exception_id', '=', row.id)
    .orderBy('at', 'desc')
    .orderBy('id', 'desc')
    .limit(MAX_AUDIT)
    .execute();
  return {
    row,
    retries: retries.map((r) => ({
      attempt: r.attempt,
      action: r.action,
      status: r.status,
      outcome: r.outcome,
      requestedBy: r.requested_by,
      startedAt: isoTime(r.started_at),
      finishedAt: r.finished_at === null ? null : isoTime(r.finished_at),
    })),
    audit: audit.reverse().map((a) => ({
      action: a.action,
      actor: a.actor,
      note: a.note,
      details: a.details,
      at: isoTime(a.at),
    })),
  };
}
