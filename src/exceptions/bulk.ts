import { type RawBuilder, sql } from 'kysely';
import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { AUDIT_AT } from './audit.ts';
import type { ExceptionsDeps } from './deps.ts';
import { VIEW_COLUMNS } from './exception-queries.ts';
import { toView, type ViewedRow } from './exception-view.ts';
import {
  AUDIT_ACTION,
  type ChangeInput,
  invalidate,
  resolvedEvent,
  setList,
  startsOf,
  TARGET,
} from './lifecycle.ts';
import { publishExceptionEvents } from './outbound-events.ts';
import type { ExceptionStatus, ExceptionsTrx } from './tables.ts';

/** Exceptions one bulk acknowledge or resolve changes at most; call again for the rest. */
export const BULK_CAP = 10_000;
/** Exceptions one bulk retry retries at most (each one a call to its source), and how many at once. */
export const RETRY_CAP = 100;
const RETRY_CONCURRENCY = 4;

/**
 * What a bulk call did: `matched` = changed + skipped (+ failed for retries); `truncated` when
 * more exceptions matched than it took on.
 */
export type BulkResult = {
  matched: number;
  changed: number;
  skipped: number;
  failed?: number | undefined;
  truncated: boolean;
  failures?: Array<{ transactionId: string; code: string }> | undefined;
};

/**
 * Acknowledges or resolves what `where` (a filter of the tenant) matches, at most BULK_CAP,
 * newest first, in four set-oriented statements whatever their number: count, update those the
 * change may move (locked, so a concurrent change is not overwritten), audit them in one insert,
 * and announce the resolved. Skipped: already there, or in a state the change cannot leave.
 */
export async function bulkChange(
  deps: ExceptionsDeps,
  tenantId: string,
  actor: string,
  where: RawBuilder<unknown>,
  input: ChangeInput,
  meta: EventMeta,
): Promise<BulkResult> {
  const starts = sql`status = any(${startsOf(TARGET[input.change])}::text[])`;
  const { counts, changed } = await withTenant(deps.db, tenantId, async (trx: ExceptionsTrx) => {
    const { rows: counted } = await sql<{ movable: number; others: number }>`
      select
        (select count(*) from (select 1 from exceptions.exceptions where ${where} and ${starts}
          limit ${BULK_CAP + 1}) m)::int as movable,
        (select count(*) from (select 1 from exceptions.exceptions where ${where} and not ${starts}
          limit ${BULK_CAP + 1}) o)::int as others`.execute(trx);
    const { rows } = await sql<ViewedRow & { previous: ExceptionStatus }>`
      update exceptions.exceptions set ${setList(input, actor)}
      from (
        select id as target_id, status as previous from exceptions.exceptions
        where ${where} and ${starts}
        order by last_seen desc, id desc
        limit ${BULK_CAP}
        for update
      ) t
      where id = t.target_id
      returning ${VIEW_COLUMNS}, t.previous`.execute(trx);
    await auditMany(trx, tenantId, actor, input, rows);
    if (input.change !== 'acknowledge') {
      const events = rows.map((r) => resolvedEvent(toView(r)));
      await publishExceptionEvents(deps.events, trx, tenantId, events, meta);
    }
    return { counts: counted[0]!, changed: rows };
  });
  if (input.change !== 'acknowledge') {
    await invalidate(
      deps,
      tenantId,
      changed.map((r) => r.transaction_id),
    );
  }
  // One counted as movable that a concurrent change moved first is skipped too.
  const skipped =
    Math.min(counts.others, BULK_CAP) + Math.max(0, Math.min(counts.movable, BULK_CAP) - changed.length);
  return {
    matched: changed.length + skipped,
    changed: changed.length,
    skipped,
    truncated: counts.movable > BULK_CAP || counts.others > BULK_CAP,
  };
}

/** One audit row per changed exception, in one insert (one JSON parameter, however many rows). */
async function auditMany(
  trx: ExceptionsTrx,
  tenantId: string,
  actor: string,
  input: ChangeInput,
  rows: Array<{ id: string; previous: ExceptionStatus }>,
): Promise<void> {
  if (rows.length === 0) return;
  const to = TARGET[input.change];
  const resolution = input.resolution ? { resolution: input.resolution } : {};
  const entries = rows.map((r) => ({
    id: uuidv7(),
    exception_id: r.id,
    details: { from: r.previous, to, bulk: true, ...resolution },
  }));
  await sql`
    insert into exceptions.audit (id, tenant_id, exception_id, action, actor, note, details, at)
    select a.id, ${tenantId}, a.exception_id, ${AUDIT_ACTION[input.change]}, ${actor}, ${input.note ?? null},
      a.details, ${AUDIT_AT}
    from jsonb_to_recordset(${JSON.stringify(entries)}::jsonb) as a(id uuid, exception_id uuid, details jsonb)`.execute(
    trx,
  );
}

/** The statuses a retry may start from (the retry part has the last word: it answers 409 otherwise). */
const RETRY_STARTS = startsOf('RETRY_IN_PROGRESS');

/**
 * Retries what `where` matches, at most RETRY_CAP, newest first: those retryable with retries
 * left in a status a retry may start from, each through deps.hooks.retry (as POST .../retry does,
 * audited there), RETRY_CONCURRENCY at a time and outside any transaction (a retry calls the
 * source). Counted: changed (retried, or under way), failed (the retry failed, or its source did),
 * skipped (not retryable, limit reached, already running: the retry's 409s, and what the selection
 * left out).
 */
export async function bulkRetry(
  deps: ExceptionsDeps,
  tenantId: string,
  actor: string,
  where: RawBuilder<unknown>,
): Promise<BulkResult> {
  const candidate = sql`retryable and retry_count < retry_limit and status = any(${RETRY_STARTS}::text[])`;
  const { ids, others } = await withTenant(deps.db, tenantId, async (trx: ExceptionsTrx) => {
    const { rows } = await sql<{ transaction_id: string }>`
      select transaction_id from exceptions.exceptions
      where ${where} and ${candidate}
      order by last_seen desc, id desc
      limit ${RETRY_CAP + 1}`.execute(trx);
    const { rows: counted } = await sql<{ n: number }>`
      select count(*)::int as n from (select 1 from exceptions.exceptions where ${where} and not (${candidate})
        limit ${BULK_CAP + 1}) o`.execute(trx);
    return { ids: rows.map((r) => r.transaction_id), others: counted[0]!.n };
  });
  const taken = ids.slice(0, RETRY_CAP);
  let changed = 0;
  let skipped = Math.min(others, BULK_CAP);
  const failures: Array<{ transactionId: string; code: string }> = [];
  const retryOne = async (transactionId: string) => {
    try {
      const outcome = await deps.hooks.retry(tenantId, transactionId, actor);
      if (outcome.status === 'failed') failures.push({ transactionId, code: 'RETRY_FAILED' });
      else changed += 1;
    } catch (error) {
      if (error instanceof AppError && error.status === 409) skipped += 1;
      else {
        failures.push({ transactionId, code: error instanceof AppError ? error.code : 'INTERNAL' });
        if (!(error instanceof AppError))
          deps.ctx.logger.error({ err: error, tenantId }, 'bulk retry failed');
      }
    }
  };
  for (let i = 0; i < taken.length; i += RETRY_CONCURRENCY) {
    await Promise.all(taken.slice(i, i + RETRY_CONCURRENCY).map(retryOne));
  }
  return {
    matched: changed + skipped + failures.length,
    changed,
    skipped,
    failed: failures.length,
    truncated: ids.length > RETRY_CAP || others > BULK_CAP,
    failures,
  };
}
