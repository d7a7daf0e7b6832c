import { type RawBuilder, sql } from 'kysely';
import { and, type ExceptionFilter, filterClauses } from './filters.ts';
import type { ExceptionStatus } from './tables.ts';

/** Exceptions still waiting for someone: the oldest of them is the summary's `oldestOpen`. */
export const OPEN_STATUSES: readonly ExceptionStatus[] = [
  'NEW',
  'ACKNOWLEDGED',
  'RETRY_IN_PROGRESS',
  'RETRIED_FAILED',
];

/**
 * `column in (…open…)`, a literal list of our own constants: the partial index
 * exceptions_open_by_day (migration 0032) serves a query only when the query's condition is its
 * predicate as written, which a bound parameter is not to a generic plan.
 */
export const openIn = (column: 'status' | 'value') =>
  sql.raw(`${column} in (${OPEN_STATUSES.map((s) => `'${s}'`).join(', ')})`);

/** The origin of every hour and day bucket: UTC, as migration 0032 bins them. */
export const ORIGIN = sql.raw(`timestamptz '2000-01-01Z'`);
/** The day of last_seen, as exceptions_open_by_day spells it (constants, not parameters). */
const DAY_OF_LAST_SEEN = sql.raw(`date_bin(interval '1 day', last_seen, timestamptz '2000-01-01Z')`);

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export type Span = { from: Date; to: Date };

/**
 * How a summary reads its range: `days` (whole UTC days) from the daily rollup, `hours` (whole
 * UTC hours outside them) from the hourly one, and `raw` spans of rows, added (`sign` 1) or
 * taken away (-1). A partial hour at an edge of the range is read either as its rows, or as its
 * whole hour from the rollup less the rows of the hour outside the range, whichever is shorter,
 * and always the latter when what lies outside is the future (a summary up to now: the current
 * hour's rows may be many, those last seen after now are next to none). Days only when the
 * buckets are days (an hour bucket needs hours). With a filter the rollup does not carry
 * (customer, location, group, retryable) the rows answer alone: `raw` is the whole range.
 */
export type SummaryPlan = { raw: Array<Span & { sign: 1 | -1 }>; hours: Span[]; days: Span | null };

/** Whether the rollup carries every column the filter names (it keys on these four). */
export const rollupAnswers = (f: ExceptionFilter): boolean =>
  f.customerId === undefined &&
  f.locationCode === undefined &&
  f.groupId === undefined &&
  f.retryable === undefined;

/** [from, to) cut at whole units of `unit` ms: the whole part, or null when it holds none. */
function whole(span: Span, unit: number): Span | null {
  const from = Math.ceil(span.from.getTime() / unit) * unit;
  const to = Math.floor(span.to.getTime() / unit) * unit;
  return from < to ? { from: new Date(from), to: new Date(to) } : null;
}

/** What is left of `outer` around `inner` (which it contains): zero, one or two spans. */
function around(outer: Span, inner: Span): Span[] {
  const left = { from: outer.from, to: inner.from };
  const right = { from: inner.to, to: outer.to };
  return [left, right].filter((s) => s.from.getTime() < s.to.getTime());
}

const ms = (span: Span) => span.to.getTime() - span.from.getTime();

/** How to read `range` (SummaryPlan); `now` tells which side of the range's end is the future. */
export function planSummary(
  filter: ExceptionFilter,
  range: Span,
  bucket: 'hour' | 'day',
  now = Date.now(),
): SummaryPlan {
  if (!rollupAnswers(filter)) return { raw: [{ ...range, sign: 1 }], hours: [], days: null };
  const raw: SummaryPlan['raw'] = [];
  // The hours the rollup reads: [first, last), widened over an edge read as "hour less the rest".
  let first = Math.ceil(range.from.getTime() / HOUR_MS) * HOUR_MS;
  let last = Math.floor(range.to.getTime() / HOUR_MS) * HOUR_MS;
  if (first > last) {
    // Within one hour: its rows.
    return { raw: [{ ...range, sign: 1 }], hours: [], days: null };
  }
  const leading = { from: range.from, to: new Date(first) };
  const before = { from: new Date(first - HOUR_MS), to: range.from };
  if (ms(leading) > 0) {
    if (ms(before) < ms(leading)) {
      first -= HOUR_MS;
      raw.push({ ...before, sign: -1 });
    } else raw.push({ ...leading, sign: 1 });
  }
  const trailing = { from: new Date(last), to: range.to };
  const after = { from: range.to, to: new Date(last + HOUR_MS) };
  if (ms(trailing) > 0) {
    if (range.to.getTime() >= now || ms(after) < ms(trailing)) {
      last += HOUR_MS;
      raw.push({ ...after, sign: -1 });
    } else raw.push({ ...trailing, sign: 1 });
  }
  if (first === last) return { raw, hours: [], days: null };
  const hours = { from: new Date(first), to: new Date(last) };
  const days = bucket === 'day' ? whole(range, DAY_MS) : null;
  return { raw, hours: days ? around(hours, days) : [hours], days };
}

const keysOf = (f: ExceptionFilter): ExceptionFilter => ({
  statuses: f.statuses,
  severities: f.severities,
  categories: f.categories,
  interfaceTypes: f.interfaceTypes,
});

/**
 * Rows of (b, interface_type, severity, status, category, n, open_first_seen, resolved,
 * resolve_ms) as rows of (b, dimension, value, …): one per dimension, so that counting by
 * dimension and value is one GROUP BY. Every exception counts once in each dimension.
 */
export const byDimension = (keyed: RawBuilder<unknown>): RawBuilder<unknown> => sql`
  select k.b, d.dimension, d.value, k.n, k.open_first_seen, k.resolved, k.resolve_ms
  from (${keyed}) as k cross join lateral (values ('interface_type', k.interface_type),
    ('severity', k.severity), ('status', k.status), ('category', k.category)) as d(dimension, value)`;

/**
 * The rollup's rows of one span of whole hours or days as (b, dimension, value, n, …), with the
 * resolved counts and milliseconds of the span (by resolved_at) for the mean time to resolve:
 * the totals per dimension when the filter names none of the four keys, else the per-key counts
 * it matches, spread over the dimensions. Not added up here: the summary's one GROUP BY does.
 */
export function rolledRows(
  tenantId: string,
  f: ExceptionFilter,
  width: 'hour' | 'day',
  span: Span,
  step: RawBuilder<unknown>,
): RawBuilder<unknown> {
  const keys = keysOf(f);
  const start = sql.ref(width);
  const inSpan = sql`${start} >= ${span.from.toISOString()}::timestamptz and ${start} < ${span.to.toISOString()}::timestamptz`;
  const b = sql`date_bin(${step}::interval, ${start}, ${ORIGIN})`;
  if (Object.values(keys).every((v) => v === undefined)) {
    return sql`
      select ${b} as b, dimension, value, exceptions::int as n, null::timestamptz as open_first_seen,
        resolved, resolve_ms
      from ${sql.table(width === 'hour' ? 'exceptions.hourly_totals' : 'exceptions.daily_totals')}
      where tenant_id = ${tenantId} and ${inSpan}`;
  }
  return byDimension(sql`
    select ${b} as b, interface_type, severity, status, category, exceptions::int as n,
      null::timestamptz as open_first_seen, resolved, resolve_ms
    from ${sql.table(width === 'hour' ? 'exceptions.hourly_counts' : 'exceptions.daily_counts')}
    where ${and(filterClauses(tenantId, keys))} and ${inSpan}`);
}

/**
 * The earliest first_seen of the open exceptions of the filter last seen in the range: one probe
 * of exceptions_open_by_day per day the summary's `cells` say holds some, each stopping at the
 * day's first entry of the filter in the range. So about one probe per day of range, whatever
 * the rows in it. Through exceptions.tenant_exceptions (migration 0031), as search: under the
 * table's row-level security PostgreSQL takes only leakproof conditions as index conditions, and
 * date_bin is not, so through the table every probe walked the tenant's rows.
 */
export function oldestOpenByDay(tenantId: string, f: ExceptionFilter, range: Span): RawBuilder<unknown> {
  const inRange = { ...f, from: range.from.toISOString(), to: range.to.toISOString() };
  return sql`
    select min(p.first_seen) as first_seen
    from (select distinct date_bin(interval '1 day', b, ${ORIGIN}) as d from cells
          where dimension = 'status' and ${openIn('value')} and n > 0) as o
    cross join lateral (
      select first_seen from exceptions.tenant_exceptions
      where ${and(filterClauses(tenantId, inRange))} and ${openIn('status')} and ${DAY_OF_LAST_SEEN} = o.d
      order by first_seen
      limit 1) as p`;
}
