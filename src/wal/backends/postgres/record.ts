import { type Kysely, sql } from 'kysely';
import { withSystem } from '../../../platform/db/index.ts';
import type { WalTables } from '../../tables.ts';
import type { AttemptRecord, Completion, FailedMessage, Failure, FenceResult } from './queue-types.ts';

// The SQL that records delivery outcomes (fenced by lease token) and their attempt rows, alone
// (completeMessages, failMessages) or inside the consumer's one statement per cycle (record-and-lease.ts).

type Db = Kysely<WalTables>;

const asDate = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));

export function attemptsJson(items: { id: string; attempts?: AttemptRecord[] }[]): string {
  return JSON.stringify(
    items.flatMap((item) =>
      (item.attempts ?? []).map((a) => ({
        message_pk: item.id,
        target: a.target,
        started_at: a.startedAt.toISOString(),
        finished_at: a.finishedAt.toISOString(),
        outcome: a.outcome,
        status_code: a.statusCode ?? null,
        error: a.error ?? null,
      })),
    ),
  );
}

// Inserts the attempt rows of the messages that passed the fence (CTE `changed`). A requeued
// message starts again at attempt 1, so its history continues past the highest recorded number.
export const insertAttempts = (json: string) => sql`
  insert into wal.attempts (message_pk, tenant_id, attempt, target, started_at, finished_at, outcome, status_code, error)
  select a.message_pk, c.tenant_id,
    greatest(c.attempts, coalesce((select max(p.attempt) from wal.attempts p where p.message_pk = c.id), 0) + 1),
    a.target, a.started_at, a.finished_at, a.outcome, a.status_code, a.error
  from jsonb_to_recordset(${json}::jsonb) as a(message_pk uuid, target text, started_at timestamptz,
    finished_at timestamptz, outcome text, status_code integer, error text)
  join changed c on c.id = a.message_pk
  on conflict do nothing`;

export function staleIds(asked: { id: string }[], updated: { id: string }[]): string[] {
  const done = new Set(updated.map((u) => u.id));
  return asked.filter((a) => !done.has(a.id)).map((a) => a.id);
}

/**
 * Marks messages delivered in one statement, fenced by lease token: a consumer whose lease
 * expired and was handed to another cannot complete the newer attempt (its id comes back stale).
 */
export async function completeMessages(db: Db, items: Completion[]): Promise<FenceResult<{ id: string }>> {
  if (items.length === 0) return { updated: [], stale: [] };
  const result = await withSystem(db, (trx) =>
    sql<{ id: string }>`
      with completed as (${completeUpdate(completionsJson(items))}),
      changed as (select * from completed),
      recorded as (${insertAttempts(attemptsJson(items))}),
      freed as (${freedKeys({ completed: true, failed: false })}),
      unparked as (${unparkNext})
      select id from changed, unparked`.execute(trx),
  );
  return { updated: result.rows, stale: staleIds(items, result.rows) };
}

export type FailedRow = {
  id: string;
  tenant_id: string;
  namespace: string;
  message_id: string;
  ordering_key: string | null;
  state: 'retrying' | 'dead';
  attempts: number;
  last_error: string;
  due_at: Date | string;
};

export const completionsJson = (items: Completion[]): string =>
  JSON.stringify(items.map((i) => ({ id: i.id, lease_token: i.leaseToken, targets_done: i.targetsDone })));

export const failuresJson = (items: Failure[]): string =>
  JSON.stringify(
    items.map((i) => ({
      id: i.id,
      lease_token: i.leaseToken,
      error: i.error,
      retry_after_ms: i.retryAfterMs ?? null,
      dead: i.dead ?? false,
      max_attempts: i.maxAttempts ?? null,
      targets_done: i.targetsDone,
    })),
  );

// Marks delivered the messages whose lease token still holds; returns id, tenant_id, namespace,
// ordering_key, attempts.
export const completeUpdate = (json: string) => sql`
  update wal.messages m
  set state = 'delivered', delivered_at = now(), targets_done = x.targets_done,
      lease_token = null, lease_expires_at = null
  from jsonb_to_recordset(${json}::jsonb) as x(id uuid, lease_token uuid, targets_done text[])
  where m.id = x.id and m.lease_token = x.lease_token and m.state = 'delivering'
  returning m.id, m.tenant_id, m.namespace, m.ordering_key, m.attempts`;

// Fails the messages whose lease token still holds (retry by the namespace's policy, or dead;
// x.max_attempts, when given, stands for the message's own: Mercato's policy for its targets);
// returns the FailedRow columns (tenant_id and attempts among them). The exponent stops at 62:
// every delay cap (at most a day, 2^27 ms) is reached long before, and base·2^998 (attempt 999 of
// the 1000 a policy allows) overflows double precision, an error failing the whole batch.
export const failUpdate = (json: string) => sql`
  update wal.messages m
  set state = case when x.dead or m.attempts >= coalesce(x.max_attempts, m.max_attempts) then 'dead' else 'retrying' end,
      dead_at = case when x.dead or m.attempts >= coalesce(x.max_attempts, m.max_attempts) then now() end,
      due_at = case when x.dead or m.attempts >= coalesce(x.max_attempts, m.max_attempts) then m.due_at
        else now() + coalesce(x.retry_after_ms,
          least(n.retry_max_delay_ms::double precision,
            case n.retry_strategy
              when 'exponential' then n.retry_base_delay_ms * power(2::double precision, least(m.attempts - 1, 62))
              when 'linear' then n.retry_base_delay_ms::double precision * m.attempts
              else n.retry_base_delay_ms::double precision
            end
          ) * (1 - n.retry_jitter + random() * 2 * n.retry_jitter)
        ) * interval '1 millisecond'
      end,
      last_error = x.error, targets_done = x.targets_done,
      lease_token = null, lease_expires_at = null
  from jsonb_to_recordset(${json}::jsonb) as x(id uuid, lease_token uuid, error text,
      retry_after_ms double precision, dead boolean, max_attempts integer, targets_done text[]),
    wal.namespaces n
  where m.id = x.id and m.lease_token = x.lease_token and m.state = 'delivering'
    and n.tenant_id = m.tenant_id and n.name = m.namespace
  returning m.id, m.tenant_id, m.namespace, m.message_id, m.ordering_key, m.state, m.attempts, m.last_error,
    m.due_at`;

/**
 * The keyed messages of CTE `completed` and of CTE `failed` (those the statement has) that no
 * longer hold their key (delivered, or dead), each as (tenant_id, namespace, ordering_key, id).
 */
export function freedKeys(has: { completed: boolean; failed: boolean }) {
  const parts = [
    ...(has.completed
      ? [
          sql`select c.tenant_id, c.namespace, c.ordering_key, c.id from completed c where c.ordering_key is not null`,
        ]
      : []),
    ...(has.failed
      ? [
          sql`select f.tenant_id, f.namespace, f.ordering_key, f.id from failed f
            where f.ordering_key is not null and f.state = 'dead'`,
        ]
      : []),
  ];
  return sql.join(parts, sql` union all `);
}

/**
 * Gives the next message of each key in CTE `freed` its due time back when it was parked
 * (lease-ctes.ts), answering how many were; a CTE that must be read for it to run.
 */
export const unparkNext = sql`
  select coalesce(sum(wal.unpark_next(f.tenant_id, f.namespace, f.ordering_key, f.id)), 0)::int as n
  from freed f`;

export const toFailed = (r: FailedRow): FailedMessage => ({
  id: r.id,
  tenantId: r.tenant_id,
  namespace: r.namespace,
  messageId: r.message_id,
  state: r.state,
  attempts: r.attempts,
  lastError: r.last_error,
  dueAt: asDate(r.due_at),
});

/** What recordAndLease came to: the fenced outcomes, then the lease (as leaseBatch). */
/**
 * Fails messages in one statement, fenced by lease token. The next due time comes from each
 * namespace's policy (exponential base·2^(n-1), linear base·n, fixed base; capped; jittered) or
 * from retryAfterMs; a message out of attempts, or failed with `dead`, moves to the dead letters.
 */
export async function failMessages(db: Db, items: Failure[]): Promise<FenceResult<FailedMessage>> {
  if (items.length === 0) return { updated: [], stale: [] };
  const result = await withSystem(db, (trx) =>
    sql<FailedRow>`
      with failed as (${failUpdate(failuresJson(items))}),
      changed as (select * from failed),
      recorded as (${insertAttempts(attemptsJson(items))}),
      freed as (${freedKeys({ completed: false, failed: true })}),
      unparked as (${unparkNext})
      select changed.* from changed, unparked`.execute(trx),
  );
  const updated = result.rows.map(toFailed);
  return { updated, stale: staleIds(items, updated) };
}
