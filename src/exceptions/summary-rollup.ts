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
/** A span whose counts are added (1) or taken away (-1). */
export type Signed = Span & { sign: 1 | -1 };

/**
 * How a summary reads its range, as a signed sum of spans: `days` (whole UTC days) from the daily
 * rollup, `hours` (whole UTC hours) from the hourly one, and `raw` spans of rows. An edge of the
 * range that cuts a unit (a day, an hour) is read either as its own part of the unit, or as the
 * whole unit less the part outside the range, whichever is shorter, and always the latter when
 * what lies outside is the future: a summary up to now reads today from the daily rollup less the
 * rows last seen after now (next to none), not today's hours one by one. Each edge is read in
 * turn at the next unit down (days' edges in hours, hours' edges as rows). Days only when the
 * buckets are days (an hour bucket needs hours). With a filter the rollup does not carry
 * (customer, location, group, retryable) the rows answer alone: `raw` is the whole range.
 */
export type SummaryPlan = { raw: Signed[]; hours: Signed[]; days: Signed | null };

/** Whether the rollup carries every column the filter names (it keys on these four). */
export const rollupAnswers = (f: ExceptionFilter): boolean =>
  f.customerId === undefined &&
  f.locationCode === undefined &&
  f.groupId === undefined &&
  f.retryable === undefined;

const ms = (span: Span) => span.to.getTime() - span.from.getTime();
/** Rows last seen in the last few seconds or later are next to none: reading them costs nothing. */
const FUTURE_SLACK_MS = 5_000;

/**
 * `span` (counted with `sign`) as whole units of `unit` ms and the signed edges around them, each
 * edge the shorter of the unit's part inside and the part outside (see SummaryPlan). No whole
 * unit when the span lies within one, or in the future (then its rows are read).
 */
function cover(span: Signed, unit: number, now: number): { whole: Signed | null; edges: Signed[] } {
  const { sign } = span;
  const flip = -sign as 1 | -1;
  let first = Math.ceil(span.from.getTime() / unit) * unit;
  let last = Math.floor(span.to.getTime() / unit) * unit;
  if (first > last || span.from.getTime() >= now - FUTURE_SLACK_MS) return { whole: null, edges: [span] };
  const edges: Signed[] = [];
  const leading = { from: span.from, to: new Date(first) };
  const before = { from: new Date(first - unit), to: span.from };
  if (ms(leading) > 0) {
    if (ms(before) < ms(leading)) {
      first -= unit;
      edges.push({ ...before, sign: flip });
    } else edges.push({ ...leading, sign });
  }
  const trailing = { from: new Date(last), to: span.to };
  const after = { from: span.to, to: new Date(last + unit) };
  if (ms(trailing) > 0) {
    if (span.to.getTime() >= now - FUTURE_SLACK_MS || ms(after) < ms(trailing)) {
      last += unit;
      edges.push({ ...after, sign: flip });
    } else edges.push({ ...trailing, sign });
  }
  if (first === last) return { whole: null, edges: [span] };
  return { whole: { from: new Date(first), to: new Date(last), sign }, edges };
}

/** How to read `range` (SummaryPlan); `now` tells which side of the range's end is the future. */
export function planSummary(
  filter: ExceptionFilter,
  range: Span,
  bucket: 'hour' | 'day',
  now = Date.now(),
): SummaryPlan {
  const all: Signed = { ...range, sign: 1 };
  if (!rollupAnswers(filter)) return { raw: [all], hours: [], days: null };
  const days = bucket === 'day' ? cover(all, DAY_MS, now) : { whole: null, edges: [all] };
  const plan: SummaryPlan = { raw: [], hours: [], days: days.whole };
  for (const edge of days.edges) {
    const hours = cover(edge, HOUR_MS, now);
    if (hours.whole) plan.hours.push(hours.whole);
    plan.raw.push(...hours.edges);
  }
  return plan;
}

const keysOf = (f: ExceptionFilter): ExceptionFilter => ({
  statuses: f.statuses,
  severities: f.severities,
  categories: f.categories,
  interfaceTypes: f.interfaceTypes,
});

/**
 * The keyed parts' rows of (b, interface_type, severity, status, category, n, open_first_seen,
 * resolved, resolve_ms), together, as rows of (b, dimension, value, …): one per dimension, so that
 * counting by dimension and value is one GROUP BY. Every exception counts once in each dimension.
 */
export const byDimension = (keyed: RawBuilder<unknown>[]): RawBuilder<unknown> => sql`
  select k.b, d.dimension, d.value, k.n, k.open_first_seen, k.resolved, k.resolve_ms
  from (${sql.join(keyed, sql` union all `)}) as k cross join lateral (values ('interface_type', k.interface_type),
    ('severity', k.severity), ('status', k.status), ('category', k.category)) as d(dimension, value)`;

/** Rows of one span: per key (`keyed`: to go through byDimension) or already per dimension and value. */
export type Rolled = { keyed: boolean; rows: RawBuilder<unknown> };

/**
 * The rollup's rows of one span of whole hours or days as (b, dimension, value, n, …), with the
 * resolved counts and milliseconds of the span (by resolved_at) for the mean time to resolve, all
 * times the span's sign: the totals per dimension when the filter names none of the four keys,
 * else the per-key counts it matches (for byDimension). Not added up here: the summary does.
 */
export function rolledRows(
  tenantId: string,
  f: ExceptionFilter,
  width: 'hour' | 'day',
  span: Signed,
  step: RawBuilder<unknown>,
): Rolled {
  const keys = keysOf(f);
  const sign = sql.lit(span.sign);
  const start = sql.ref(width);
  const inSpan = sql`${start} >= ${span.from.toISOString()}::timestamptz and ${start} < ${span.to.toISOString()}::timestamptz`;
  const b = sql`date_bin(${step}::interval, ${start}, ${ORIGIN})`;
  if (Object.values(keys).every((v) => v === undefined)) {
    return {
      keyed: false,
      rows: sql`
      select ${b} as b, dimension, value, ${sign} * exceptions::int as n, null::timestamptz as open_first_seen,
        ${sign} * resolved as resolved, ${sign} * resolve_ms as resolve_ms
      from ${sql.table(width === 'hour' ? 'exceptions.hourly_totals' : 'exceptions.daily_totals')}
      where tenant_id = ${tenantId} and ${inSpan}`,
    };
  }
  return {
    keyed: true,
    rows: sql`
    select ${b} as b, interface_type, severity, status, category, ${sign} * exceptions::int as n,
      null::timestamptz as open_first_seen, ${sign} * resolved as resolved, ${sign} * resolve_ms as resolve_ms
    from ${sql.table(width === 'hour' ? 'exceptions.hourly_counts' : 'exceptions.daily_counts')}
    where ${and(filterClauses(tenantId, keys))} and ${inSpan}`,
  };
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
