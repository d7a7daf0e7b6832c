import { type Kysely, sql } from 'kysely';
import { withSystem } from '../../../platform/db/index.ts';
import type { MessageState, WalTables } from '../../tables.ts';

/** A message handed to a consumer under a lease; `leaseToken` fences its complete or fail. */
export type LeasedMessage = {
  id: string;
  tenantId: string;
  namespace: string;
  messageId: string;
  orderingKey: string | null;
  payload: unknown;
  headers: Record<string, string>;
  attempts: number;
  maxAttempts: number;
  targetsDone: string[];
  leaseToken: string;
  leaseExpiresAt: Date;
  dueAt: Date;
  createdAt: Date;
};

/** One target's part of a delivery attempt, recorded in wal.attempts when the fence holds. */
export type AttemptRecord = {
  target: string;
  startedAt: Date;
  finishedAt: Date;
  outcome: 'delivered' | 'failed' | 'dead' | 'skipped';
  statusCode?: number | undefined;
  error?: string | undefined;
};

export type Completion = {
  id: string;
  leaseToken: string;
  targetsDone: string[];
  attempts?: AttemptRecord[];
};

export type Failure = {
  id: string;
  leaseToken: string;
  error: string;
  /** When the target said when to retry (Retry-After); else the namespace's policy decides. */
  retryAfterMs?: number | undefined;
  /** Non-retryable: straight to the dead letters. */
  dead?: boolean | undefined;
  targetsDone: string[];
  attempts?: AttemptRecord[];
};

/** What a fenced update came to: `updated` rows passed the fence; `stale` ids held an old lease. */
export type FenceResult<R> = { updated: R[]; stale: string[] };

export type FailedMessage = {
  id: string;
  tenantId: string;
  namespace: string;
  messageId: string;
  state: Extract<MessageState, 'retrying' | 'dead'>;
  attempts: number;
  lastError: string;
  dueAt: Date;
};

type Db = Kysely<WalTables>;

type LeasedRow = {
  id: string;
  tenant_id: string;
  namespace: string;
  message_id: string;
  ordering_key: string | null;
  payload: unknown;
  headers: Record<string, string>;
  attempts: number;
  max_attempts: number;
  targets_done: string[];
  lease_token: string;
  lease_expires_at: Date | string;
  due_at: Date | string;
  created_at: Date | string;
};

const asDate = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));
const asJson = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

/**
 * Leases up to `limit` due messages of the postgres backend (rows of a stream backend wait there
 * for the relay) in one statement: pending, scheduled or retrying rows whose
 * due time has come, and delivering rows whose lease expired (a consumer died). A message whose
 * ordering key has an earlier message still undelivered waits, so a key is delivered in order.
 * Each leased row gets `attempts + 1` and a new lease token.
 */
export async function leaseMessages(
  db: Db,
  options: { limit: number; leaseMs: number; tenantIds?: string[] },
): Promise<LeasedMessage[]> {
  return (await leaseBatch(db, options)).messages;
}

/**
 * leaseMessages, also answering the database time the lease looked at: rows due by then and not
 * leased are held by another consumer or wait behind their key (see nextWakeInMs).
 */
export async function leaseBatch(
  db: Db,
  options: { limit: number; leaseMs: number; tenantIds?: string[] },
): Promise<{ messages: LeasedMessage[]; at: Date }> {
  const tenantFilter = options.tenantIds ? sql`and m.tenant_id = any(${options.tenantIds}::uuid[])` : sql``;
  const result = await withSystem(db, (trx) =>
    sql<LeasedRow & { at: Date | string }>`
      with candidates as (
        select m.id from wal.messages m
        where (
            (m.state in ('pending', 'scheduled', 'retrying') and m.due_at <= now())
            or (m.state = 'delivering' and m.lease_expires_at < now())
          )
          and m.backend = 'postgres'
          ${tenantFilter}
          and exists (
            select 1 from wal.namespaces n
            where n.tenant_id = m.tenant_id and n.name = m.namespace and n.enabled
          )
          and (m.ordering_key is null or not exists (
            select 1 from wal.messages e
            where e.tenant_id = m.tenant_id and e.namespace = m.namespace
              and e.ordering_key = m.ordering_key and e.id < m.id
              and e.state not in ('delivered', 'dead')
          ))
        order by m.due_at, m.id
        limit ${options.limit}
        for update of m skip locked
      )
      , leased as (
      update wal.messages m
      set state = 'delivering',
          attempts = m.attempts + 1,
          lease_token = gen_random_uuid(),
          lease_expires_at = now() + ${options.leaseMs} * interval '1 millisecond'
      from candidates c
      where m.id = c.id
      returning m.id, m.tenant_id, m.namespace, m.message_id, m.ordering_key, m.payload, m.headers,
        m.attempts, m.max_attempts, m.targets_done, m.lease_token, m.lease_expires_at, m.due_at,
        m.created_at
      )
      select leased.*, now() as at from (select 1) one left join leased on true`.execute(trx),
  );
  const at = asDate((result.rows[0] as { at: Date | string }).at);
  const messages = result.rows
    .filter((r) => r.id !== null)
    .map((r) => ({
      id: r.id,
      tenantId: r.tenant_id,
      namespace: r.namespace,
      messageId: r.message_id,
      orderingKey: r.ordering_key,
      payload: asJson(r.payload),
      headers: asJson(r.headers) as Record<string, string>,
      attempts: r.attempts,
      maxAttempts: r.max_attempts,
      targetsDone: r.targets_done,
      leaseToken: r.lease_token,
      leaseExpiresAt: asDate(r.lease_expires_at),
      dueAt: asDate(r.due_at),
      createdAt: asDate(r.created_at),
    }))
    .sort((a, b) => a.dueAt.getTime() - b.dueAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { messages, at };
}

function attemptsJson(items: { id: string; attempts?: AttemptRecord[] }[]): string {
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
const insertAttempts = (json: string) => sql`
  insert into wal.attempts (message_pk, tenant_id, attempt, target, started_at, finished_at, outcome, status_code, error)
  select a.message_pk, c.tenant_id,
    greatest(c.attempts, coalesce((select max(p.attempt) from wal.attempts p where p.message_pk = c.id), 0) + 1),
    a.target, a.started_at, a.finished_at, a.outcome, a.status_code, a.error
  from jsonb_to_recordset(${json}::jsonb) as a(message_pk uuid, target text, started_at timestamptz,
    finished_at timestamptz, outcome text, status_code integer, error text)
  join changed c on c.id = a.message_pk
  on conflict do nothing`;

function staleIds(asked: { id: string }[], updated: { id: string }[]): string[] {
  const done = new Set(updated.map((u) => u.id));
  return asked.filter((a) => !done.has(a.id)).map((a) => a.id);
}

/**
 * Marks messages delivered in one statement, fenced by lease token: a consumer whose lease
 * expired and was handed to another cannot complete the newer attempt (its id comes back stale).
 */
export async function completeMessages(db: Db, items: Completion[]): Promise<FenceResult<{ id: string }>> {
  if (items.length === 0) return { updated: [], stale: [] };
  const input = JSON.stringify(
    items.map((i) => ({ id: i.id, lease_token: i.leaseToken, targets_done: i.targetsDone })),
  );
  const result = await withSystem(db, (trx) =>
    sql<{ id: string }>`
      with changed as (
        update wal.messages m
        set state = 'delivered', delivered_at = now(), targets_done = x.targets_done,
            lease_token = null, lease_expires_at = null
        from jsonb_to_recordset(${input}::jsonb) as x(id uuid, lease_token uuid, targets_done text[])
        where m.id = x.id and m.lease_token = x.lease_token and m.state = 'delivering'
        returning m.id, m.tenant_id, m.attempts
      ),
      recorded as (${insertAttempts(attemptsJson(items))})
      select id from changed`.execute(trx),
  );
  return { updated: result.rows, stale: staleIds(items, result.rows) };
}

type FailedRow = {
  id: string;
  tenant_id: string;
  namespace: string;
  message_id: string;
  state: 'retrying' | 'dead';
  attempts: number;
  last_error: string;
  due_at: Date | string;
};

/**
 * Fails messages in one statement, fenced by lease token. The next due time comes from each
 * namespace's policy (exponential base·2^(n-1), linear base·n, fixed base; capped; jittered) or
 * from retryAfterMs; a message out of attempts, or failed with `dead`, moves to the dead letters.
 */
export async function failMessages(db: Db, items: Failure[]): Promise<FenceResult<FailedMessage>> {
  if (items.length === 0) return { updated: [], stale: [] };
  const input = JSON.stringify(
    items.map((i) => ({
      id: i.id,
      lease_token: i.leaseToken,
      error: i.error,
      retry_after_ms: i.retryAfterMs ?? null,
      dead: i.dead ?? false,
      targets_done: i.targetsDone,
    })),
  );
  const result = await withSystem(db, (trx) =>
    sql<FailedRow>`
      with x as (
        select * from jsonb_to_recordset(${input}::jsonb) as x(id uuid, lease_token uuid, error text,
          retry_after_ms double precision, dead boolean, targets_done text[])
      ),
      changed as (
        update wal.messages m
        set state = case when x.dead or m.attempts >= m.max_attempts then 'dead' else 'retrying' end,
            dead_at = case when x.dead or m.attempts >= m.max_attempts then now() end,
            due_at = case when x.dead or m.attempts >= m.max_attempts then m.due_at
              else now() + coalesce(x.retry_after_ms,
                least(n.retry_max_delay_ms::double precision,
                  case n.retry_strategy
                    when 'exponential' then n.retry_base_delay_ms * power(2::double precision, m.attempts - 1)
                    when 'linear' then n.retry_base_delay_ms::double precision * m.attempts
                    else n.retry_base_delay_ms::double precision
                  end
                ) * (1 - n.retry_jitter + random() * 2 * n.retry_jitter)
              ) * interval '1 millisecond'
            end,
            last_error = x.error, targets_done = x.targets_done,
            lease_token = null, lease_expires_at = null
        from x, wal.namespaces n
        where m.id = x.id and m.lease_token = x.lease_token and m.state = 'delivering'
          and n.tenant_id = m.tenant_id and n.name = m.namespace
        returning m.id, m.tenant_id, m.namespace, m.message_id, m.state, m.attempts, m.last_error, m.due_at
      ),
      recorded as (${insertAttempts(attemptsJson(items))})
      select * from changed`.execute(trx),
  );
  const updated = result.rows.map((r) => ({
    id: r.id,
    tenantId: r.tenant_id,
    namespace: r.namespace,
    messageId: r.message_id,
    state: r.state,
    attempts: r.attempts,
    lastError: r.last_error,
    dueAt: asDate(r.due_at),
  }));
  return { updated, stale: staleIds(items, updated) };
}

/**
 * Milliseconds until the queue next needs a look (by the database's clock; 0 or less: now): the
 * earliest due time of a waiting message or lease expiry of a delivering one after `since` (the
 * time of the last lease, so a row that fell due since is not missed); undefined when nothing
 * waits. Rows due by `since` and not leased are held by another consumer or wait behind their
 * key, whose completion loops that consumer again.
 */
export async function nextWakeInMs(db: Db, since?: Date): Promise<number | undefined> {
  const after = since ? sql`${since.toISOString()}::timestamptz` : sql`now()`;
  const result = await withSystem(db, (trx) =>
    sql<{ ms: number | string | null }>`
      select (extract(epoch from least(
        (select min(m.due_at) from wal.messages m join wal.namespaces n on n.tenant_id = m.tenant_id
          and n.name = m.namespace and n.enabled
          where m.state in ('pending', 'scheduled', 'retrying') and m.backend = 'postgres'
            and m.due_at > ${after}),
        (select min(lease_expires_at) from wal.messages where state = 'delivering' and lease_expires_at >= ${after})
      ) - now()) * 1000)::double precision as ms`.execute(trx),
  );
  const ms = result.rows[0]?.ms;
  return ms === null || ms === undefined ? undefined : Number(ms);
}

/**
 * Extends the leases a consumer still holds (same token) by `leaseMs` from now, so a slow target
 * does not see its message handed to another consumer. Returns the ids whose lease was extended;
 * a missing id was taken over or finished.
 */
export async function extendLeases(
  db: Db,
  items: { id: string; leaseToken: string }[],
  leaseMs: number,
): Promise<string[]> {
  if (items.length === 0) return [];
  const input = JSON.stringify(items.map((i) => ({ id: i.id, lease_token: i.leaseToken })));
  const result = await withSystem(db, (trx) =>
    sql<{ id: string }>`
      update wal.messages m
      set lease_expires_at = now() + ${leaseMs} * interval '1 millisecond'
      from jsonb_to_recordset(${input}::jsonb) as x(id uuid, lease_token uuid)
      where m.id = x.id and m.lease_token = x.lease_token and m.state = 'delivering'
      returning m.id`.execute(trx),
  );
  return result.rows.map((r) => r.id);
}
