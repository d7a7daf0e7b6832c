import { sql } from 'kysely';
import { AppError } from '../platform/http/index.ts';
import { and, type ExceptionFilter, filterClauses, filterSql } from './filters.ts';
import {
  byDimension,
  ORIGIN,
  oldestOpenByDay,
  openIn,
  planSummary,
  rolledRows,
  type Span,
} from './summary-rollup.ts';
import {
  CATEGORIES,
  type Category,
  type ExceptionStatus,
  type ExceptionsTrx,
  INTERFACE_TYPES,
  type InterfaceType,
  SEVERITIES,
  type Severity,
  STATUSES,
} from './tables.ts';

/** The summary's range: the last 24 hours unless given, at most 90 days. */
export const DEFAULT_RANGE_MS = 24 * 3_600_000;
export const MAX_RANGE_MS = 90 * 24 * 3_600_000;
const EARLIEST_MS = Date.parse('0001-01-01T00:00:00Z');

export type Bucket = 'hour' | 'day';

export type Summary = {
  from: string;
  to: string;
  bucket: Bucket;
  total: number;
  byInterfaceType: Record<InterfaceType, number>;
  bySeverity: Record<Severity, number>;
  byStatus: Record<ExceptionStatus, number>;
  byCategory: Record<Category, number>;
  buckets: Array<{ start: string; count: number }>;
  oldestOpen: {
    transactionId: string;
    status: ExceptionStatus;
    severity: Severity;
    firstSeen: string;
    ageSeconds: number;
  } | null;
  meanTimeToResolveSeconds: number | null;
  resolved: number;
};

/**
 * The range of a summary: `from`/`to` as given, else the 24 hours up to `to` (or now); 400 when
 * it is longer than 90 days or `from` is not before `to` (readFilter checked that already).
 */
export function summaryRange(filter: ExceptionFilter, now = new Date()): { from: Date; to: Date } {
  const to = filter.to !== undefined ? new Date(filter.to) : now;
  const from = filter.from !== undefined ? new Date(filter.from) : new Date(to.getTime() - DEFAULT_RANGE_MS);
  // Given bounds are years 0001 to 9999 in UTC (the date-time check); the default from, a day
  // before an early `to`, may fall before them, which PostgreSQL would refuse as text (a 500).
  if (from.getTime() < EARLIEST_MS) {
    throw new AppError('VALIDATION_FAILED', 'a summary covers the years 0001 to 9999 (UTC)', {
      errors: [{ in: 'query', pointer: '/to', message: 'must be within the years 0001 to 9999 (UTC)' }],
    });
  }
  if (to.getTime() - from.getTime() > MAX_RANGE_MS) {
    throw new AppError('VALIDATION_FAILED', 'a summary covers at most 90 days', {
      errors: [{ in: 'query', pointer: '/from', message: 'must be at most 90 days before to' }],
    });
  }
  if (from.getTime() >= to.getTime()) {
    throw new AppError('VALIDATION_FAILED', '`from` must be before `to`', {
      errors: [{ in: 'query', pointer: '/to', message: 'must be after from' }],
    });
  }
  return { from, to };
}

const zeros = <K extends string>(keys: readonly K[]) =>
  Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

type Answer = {
  dimensions: Array<{
    dimension: 'interface_type' | 'severity' | 'status' | 'category';
    value: string;
    n: number;
  }> | null;
  buckets: Array<{ bucket: string; n: number }> | null;
  oldest: { transaction_id: string; status: ExceptionStatus; severity: Severity; first_seen: string } | null;
  mttr: { ms: number | string | null; resolved: number | string };
  now: string;
};

/** resolved_at - first_seen in whole milliseconds, as migration 0032 sums it. */
const RESOLVE_MS = sql`round(extract(epoch from resolved_at - first_seen) * 1000)`;

/**
 * Counts of the tenant's exceptions last seen in the range and matching the filter, by interface
 * type, severity, status, category and time bucket (by last seen, in UTC); the oldest open one
 * (earliest first seen) with its age; and the mean time to resolve (resolved_at - first_seen, in
 * whole milliseconds) of those resolved in the range. One statement.
 *
 * When the filter names only what the rollup of migration 0032 carries (interface type,
 * severity, status, category), the whole days and hours of the range are read from it (the
 * totals per dimension when unfiltered, else the counts per key) and only the rows of the partial
 * hours at its edges from the table: the answer is the rows' own (summary-rollup.ts). At
 * 1,000,000 exceptions over 90 days an unfiltered month reads some 1,700 rollup rows instead of
 * 333,000 exceptions. The oldest open is one probe of exceptions_open_by_day per day holding open
 * exceptions; the mean time to resolve adds the rollup's resolved sums (by resolved_at) to the
 * edges' rows (exceptions_resolved). Other filters (customer, location, group, retryable) read
 * the range's rows (an index-only scan of exceptions_newest): their cost grows with the rows.
 */
export async function summarize(
  trx: ExceptionsTrx,
  tenantId: string,
  filter: ExceptionFilter,
  bucket: Bucket,
  range: { from: Date; to: Date },
): Promise<Summary> {
  const plan = planSummary(filter, range, bucket);
  const within = (span: Span) => ({ ...filter, from: span.from.toISOString(), to: span.to.toISOString() });
  const anyTime = filterClauses(tenantId, { ...filter, from: undefined, to: undefined });
  const step = sql.lit(bucket === 'hour' ? '1 hour' : '1 day');
  // Counts per bucket, dimension and value: the raw spans' rows (grouped by key first: the raw
  // path may read a million; a span taken away counts negatively) and the rollup's per key, then
  // by dimension in one pass (byDimension), with the rollup's totals per dimension.
  const rawRows = plan.raw.map(
    (span) => sql`
      select date_bin(${step}::interval, last_seen, ${ORIGIN}) as b,
        interface_type, severity, status, category, ${sql.lit(span.sign)} * count(*)::int as n,
        ${span.sign === 1 ? sql`min(first_seen) filter (where ${openIn('status')})` : sql`null::timestamptz`}
          as open_first_seen,
        0::bigint as resolved, 0::bigint as resolve_ms
      from exceptions.exceptions
      where ${filterSql(tenantId, within(span))}
      group by 1, 2, 3, 4, 5`,
  );
  const rolledSpans = [
    ...plan.hours.map((span) => rolledRows(tenantId, filter, 'hour', span, step)),
    ...(plan.days ? [rolledRows(tenantId, filter, 'day', plan.days, step)] : []),
  ];
  const keyed = [...rawRows, ...rolledSpans.filter((r) => r.keyed).map((r) => r.rows)];
  const parts = [
    ...(keyed.length > 0 ? [byDimension(keyed)] : []),
    ...rolledSpans.filter((r) => !r.keyed).map((r) => r.rows),
  ];
  // The rows resolved in the raw spans (by resolved_at), for the mean time to resolve (the
  // rollup's are in cells).
  const resolvedRaw = plan.raw.map(
    (span) => sql`
      union all
      select ${sql.lit(span.sign)} * count(*), ${sql.lit(span.sign)} * sum(${RESOLVE_MS}) from exceptions.exceptions
      where ${and(anyTime)} and resolved_at >= ${span.from.toISOString()}::timestamptz
        and resolved_at < ${span.to.toISOString()}::timestamptz`,
  );
  const rolled = plan.hours.length > 0 || plan.days !== null;
  const probed = rolled
    ? oldestOpenByDay(tenantId, filter, range)
    : sql`select null::timestamptz as first_seen`;
  // The cells are few (22 per bucket unfiltered, 4 × 4 × 7 × 7 × 4 at most), but the planner
  // cannot know how few: with the default work_mem it would sort on disk instead of hashing. The
  // rollup's reads are small: parallel workers would only cost their start (milliseconds each).
  const serial = rolled
    ? sql`, set_config('max_parallel_workers_per_gather', '0', true), set_config('plan_cache_mode', 'force_generic_plan', true)`
    : sql``;
  await sql`select set_config('work_mem', '32MB', true)${serial}`.execute(trx);
  // `cells`: one row per bucket, dimension and value. Each exception counts once per dimension,
  // so the status cells alone give the buckets, the total and the resolved sums.
  const { rows } = await sql<{ answer: Answer | string }>`
    with cells as (
      select b, dimension, value, sum(n)::int as n, min(open_first_seen) as open_first_seen,
        sum(resolved) as resolved, sum(resolve_ms) as resolve_ms
      from (${sql.join(parts, sql` union all `)}) as parts
      group by b, dimension, value
    ), probed as (${probed}
    ), oldest as (
      select transaction_id, status, severity, first_seen from exceptions.exceptions
      where ${filterSql(tenantId, within(range))} and ${openIn('status')}
        and first_seen = (select least(min(open_first_seen), (select first_seen from probed))
          from cells where dimension = 'status')
      order by id limit 1
    ), resolved as (
      select sum(resolved) as n, sum(resolve_ms) as ms from cells where dimension = 'status'
      ${sql.join(resolvedRaw, sql` `)}
    )
    select json_build_object(
      'dimensions', (select json_agg(d) from (select dimension, value, sum(n)::int as n from cells
        group by dimension, value) as d),
      'buckets', (select json_agg(x) from (select to_char(b at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as bucket,
        sum(n)::int as n from cells where dimension = 'status' group by b) as x),
      'oldest', (select row_to_json(oldest) from oldest),
      'mttr', (select json_build_object('ms', sum(ms), 'resolved', coalesce(sum(n), 0)) from resolved),
      'now', now()
    ) as answer`.execute(trx);
  const raw = rows[0]!.answer;
  const answer = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Answer;
  return shape(answer, bucket, range);
}

/** The answer of the statement as the API shows it: every key of every dimension, empty buckets as 0. */
function shape(answer: Answer, bucket: Bucket, range: { from: Date; to: Date }): Summary {
  const counts = {
    interface_type: zeros(INTERFACE_TYPES) as Record<string, number>,
    severity: zeros(SEVERITIES) as Record<string, number>,
    status: zeros(STATUSES) as Record<string, number>,
    category: zeros(CATEGORIES) as Record<string, number>,
  };
  for (const d of answer.dimensions ?? []) counts[d.dimension][d.value] = d.n;
  const counted = new Map((answer.buckets ?? []).map((b) => [b.bucket, b.n]));
  const oldest = answer.oldest;
  const resolved = Number(answer.mttr.resolved);
  const now = new Date(answer.now).getTime();
  return {
    from: range.from.toISOString(),
    to: range.to.toISOString(),
    bucket,
    total: Object.values(counts.status).reduce((n, c) => n + c, 0),
    byInterfaceType: counts.interface_type as Record<InterfaceType, number>,
    bySeverity: counts.severity as Record<Severity, number>,
    byStatus: counts.status as Record<ExceptionStatus, number>,
    byCategory: counts.category as Record<Category, number>,
    buckets: bucketStarts(bucket, range).map((start) => ({
      start: start.toISOString(),
      count: counted.get(start.toISOString().replace('.000Z', 'Z')) ?? 0,
    })),
    oldestOpen: oldest && {
      transactionId: oldest.transaction_id,
      status: oldest.status,
      severity: oldest.severity,
      firstSeen: new Date(oldest.first_seen).toISOString(),
      ageSeconds: Math.max(0, Math.floor((now - new Date(oldest.first_seen).getTime()) / 1000)),
    },
    meanTimeToResolveSeconds: resolved === 0 ? null : Math.round(Number(answer.mttr.ms) / resolved) / 1000,
    resolved,
  };
}

/** The start of every bucket the range touches (UTC hours or days), oldest first. */
function bucketStarts(bucket: Bucket, range: { from: Date; to: Date }): Date[] {
  const step = bucket === 'hour' ? 3_600_000 : 86_400_000;
  const first = Math.floor(range.from.getTime() / step) * step;
  const starts: Date[] = [];
  for (let t = first; t < range.to.getTime(); t += step) starts.push(new Date(t));
  return starts;
}
