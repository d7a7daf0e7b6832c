import { type Kysely, sql } from 'kysely';
import type { WalTables } from '../../tables.ts';
import { asDate, asJson, type LeasedRow, toLeased, withQueuePlan } from './lease.ts';
import { type LeaseOptions, leaseCtes } from './lease-ctes.ts';
import type { Completion, FailedMessage, Failure, FenceResult, LeasedMessage } from './queue-types.ts';
import {
  attemptsJson,
  completeUpdate,
  completionsJson,
  type FailedRow,
  failUpdate,
  failuresJson,
  freedKeys,
  insertAttempts,
  staleIds,
  toFailed,
  unparkNext,
} from './record.ts';

type Db = Kysely<WalTables>;

export type CycleResult = {
  completed: FenceResult<{ id: string }>;
  failed: FenceResult<FailedMessage>;
  messages: LeasedMessage[];
  /** Messages the lease set aside behind their key (lease-ctes.ts): the next lease reads past them. */
  parked: number;
  at: Date;
};

/**
 * completeMessages, failMessages and leaseBatch in ONE statement (a consumer's steady state costs
 * one statement per cycle). The lease sees the queue as it was
 * before the statement: the next message of a key completed here waits for the next cycle, so a
 * caller that recorded outcomes should lease again. An id recorded here is never leased here.
 */
export async function recordAndLease(
  db: Db,
  options: LeaseOptions & { completions: Completion[]; failures: Failure[] },
): Promise<CycleResult> {
  const { completions, failures } = options;
  const recorded = [...completions, ...failures];
  const ids = JSON.stringify(recorded.map((r) => r.id));
  const exclude =
    recorded.length > 0
      ? sql`and m.id not in (select x.id::uuid from jsonb_array_elements_text(${ids}::jsonb) as x(id))`
      : sql``;
  const result = await withQueuePlan(db, (trx) =>
    sql<{
      leased: LeasedRow[] | string;
      completed: string[] | string;
      failed: FailedRow[] | string;
      unparked: number;
      parked: number;
      at: Date | string;
    }>`
    with recursive completed as (${completeUpdate(completionsJson(completions))}),
    failed as (${failUpdate(failuresJson(failures))}),
    changed as (
      select id, tenant_id, attempts from completed
      union all select id, tenant_id, attempts from failed
    ),
    recorded as (${insertAttempts(attemptsJson(recorded))}),
    recorded_keys as (
      select tenant_id, namespace, ordering_key from completed where ordering_key is not null
      union select tenant_id, namespace, ordering_key from failed where ordering_key is not null
    ),
    freed as (${freedKeys({ completed: true, failed: true })}),
    unparked as (${unparkNext}),
    ${leaseCtes(options, exclude, 'recorded_keys')}
    select
      (select coalesce(json_agg(l), '[]'::json) from leased l) as leased,
      (select coalesce(json_agg(c.id), '[]'::json) from completed c) as completed,
      (select coalesce(json_agg(f), '[]'::json) from failed f) as failed,
      (select n from unparked) as unparked,
      (select count(*) from parked)::int as parked,
      now() as at`.execute(trx),
  );
  const row = result.rows[0] as (typeof result.rows)[number];
  const completedIds = (asJson(row.completed) as string[]).map((id) => ({ id }));
  const failed = (asJson(row.failed) as FailedRow[]).map(toFailed);
  return {
    completed: { updated: completedIds, stale: staleIds(completions, completedIds) },
    failed: { updated: failed, stale: staleIds(failures, failed) },
    messages: toLeased(asJson(row.leased) as LeasedRow[]),
    parked: Number(row.parked),
    at: asDate(row.at),
  };
}
