import { type Kysely, sql, type Transaction } from 'kysely';
import { type JsonColumn, jsonRows, withSystem, withSystemSettings } from '../../../platform/db/index.ts';
import type { WalTables } from '../../tables.ts';
import type { Completion, FailedMessage, Failure, FenceResult, LeasedMessage } from './queue-types.ts';
import {
  attemptsJson,
  completeUpdate,
  completionsJson,
  type FailedRow,
  failUpdate,
  failuresJson,
  insertAttempts,
  staleIds,
  toFailed,
} from './record.ts';

export type * from './queue-types.ts';
export { completeMessages, failMessages } from './record.ts';

type Db = Kysely<WalTables>;

/** The leases extendLeases renews (jsonRows). */
const LEASES: JsonColumn[] = [
  ['id', 'uuid'],
  ['lease_token', 'uuid'],
];

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

// A row may be leased when no earlier message of its ordering key is still undelivered (index
// messages_key); its namespace's enabled flag is checked where the lease walks the namespaces.
const inKeyOrder = sql`(m.ordering_key is null or not exists (
    select 1 from wal.messages e
    where e.tenant_id = m.tenant_id and e.namespace = m.namespace
      and e.ordering_key = m.ordering_key and e.id < m.id
      and e.state not in ('delivered', 'dead')
  ))`;

/**
 * How much of the queue one consumer may hold, so that no namespace (and no tenant) takes the
 * lease slots another one needs: a namespace holds at most `prefetch` × its concurrency (capped at
 * `maxConcurrency`) and all of a tenant's namespaces together at most `tenantShare`.
 */
export type LeaseWindows = {
  /** Messages the consumer holds already (leased, outcome not recorded), per namespace. */
  held: { tenantId: string; namespace: string; count: number }[];
  /** Upper bound of any namespace's consumerConcurrency (MERCATO_WAL_MAX_CONCURRENCY). */
  maxConcurrency: number;
  /** Leased ahead of a free delivery slot: a namespace holds up to prefetch × its concurrency. */
  prefetch: number;
  /** What one tenant's namespaces may hold together. */
  tenantShare: number;
};

type LeaseOptions = {
  limit: number;
  leaseMs: number;
  tenantIds?: string[] | undefined;
  windows?: LeaseWindows;
};

const asDate = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));
const asJson = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

/**
 * Leases up to `limit` due messages of the postgres backend (rows of a stream backend wait there
 * for the relay) in one statement: pending, scheduled or retrying rows whose
 * due time has come, and delivering rows whose lease expired (a consumer died). A message whose
 * ordering key has an earlier message still undelivered waits, so a key is delivered in order.
 * With `windows`, each namespace and tenant gets no more than its room (oldest first across them).
 * Each leased row gets `attempts + 1` and a new lease token.
 */
export async function leaseMessages(db: Db, options: LeaseOptions): Promise<LeasedMessage[]> {
  return (await leaseBatch(db, options)).messages;
}

/**
 * leaseMessages, also answering the database time the lease looked at: rows due by then and not
 * leased are held by another consumer, wait behind their key, or wait for room in their window
 * (see nextWakeInMs).
 */
export async function leaseBatch(
  db: Db,
  options: LeaseOptions,
): Promise<{ messages: LeasedMessage[]; at: Date }> {
  const result = await withQueuePlan(db, (trx) =>
    sql<LeasedRow & { at: Date | string }>`
      with ${leaseCtes(options)}
      select leased.*, now() as at from (select 1) one left join leased on true`.execute(trx),
  );
  const at = asDate((result.rows[0] as { at: Date | string }).at);
  return { messages: toLeased(result.rows.filter((r) => r.id !== null)), at };
}

/**
 * The CTEs of a lease (see leaseMessages), ending in `leased`. `open_ns` lists the enabled
 * namespaces with their room (`windows`: what each namespace and its tenant may still hold; all of
 * `limit` without windows). `due` walks each open namespace's due messages in order
 * (messages_due_by_namespace) up to its room, `expired` the expired leases of open namespaces;
 * `candidates` keeps, oldest first, what fits each namespace's and then each tenant's room, up to
 * `limit`. Rows locked and not kept are released at commit. `exclude`: ids whose outcome the same
 * statement records (an expired lease of our own must not be re-leased there).
 */
function leaseCtes(options: LeaseOptions, exclude = sql``) {
  const { limit, windows } = options;
  const tenantFilter = options.tenantIds ? sql`and n.tenant_id = any(${options.tenantIds}::uuid[])` : sql``;
  const held = JSON.stringify(
    (windows?.held ?? []).map((h) => ({ tenant_id: h.tenantId, namespace: h.namespace, n: h.count })),
  );
  const share = windows ? windows.tenantShare : limit;
  const window = windows
    ? sql`least(${windows.prefetch}::int * least(n.consumer_concurrency, ${windows.maxConcurrency}::int), ${share}::int)`
    : sql`${limit}::int`;
  return sql`
      held as (
        select h.tenant_id, h.namespace, sum(h.n)::int as n
        from jsonb_to_recordset(${held}::jsonb) as h(tenant_id uuid, namespace text, n integer)
        group by h.tenant_id, h.namespace
      ),
      held_by_tenant as (
        select h.tenant_id, sum(h.n)::int as n from held h group by h.tenant_id
      ),
      open_ns as (
        -- Joined, not a lookup per namespace: every enabled namespace is read each lease.
        select * from (
          select n.tenant_id, n.name,
            (${window} - coalesce(h.n, 0))::int as room,
            (${share}::int - coalesce(t.n, 0))::int as tenant_room
          from wal.namespaces n
          left join held h on h.tenant_id = n.tenant_id and h.namespace = n.name
          left join held_by_tenant t on t.tenant_id = n.tenant_id
          where n.enabled and not n.paused ${tenantFilter}
        ) o
        where o.room > 0 and o.tenant_room > 0
      ),
      due as (
        select o.tenant_id, o.name as namespace, o.room, o.tenant_room, d.id, d.due_at
        from open_ns o cross join lateral (
          select m.id, m.due_at from wal.messages m
          where m.tenant_id = o.tenant_id and m.namespace = o.name
            and m.state in ('scheduled', 'pending', 'retrying') and m.due_at <= now()
            and m.backend = 'postgres'
            and ${inKeyOrder}
          order by m.due_at, m.id
          limit least(o.room, o.tenant_room, ${limit}::int)
          for update of m skip locked
        ) d
      ),
      expired as (
        select o.tenant_id, o.name as namespace, o.room, o.tenant_room, x.id, x.due_at
        from (
          -- Walks messages_leased (the few delivering rows), checking each row's namespace by a
          -- scalar lookup: a join or exists would let the planner walk every message of each open
          -- namespace instead (10 ms per lease on a namespace of 20,000 messages).
          select m.id, m.tenant_id, m.namespace, m.due_at from wal.messages m
          where m.state = 'delivering' and m.lease_expires_at < now()
            and m.backend = 'postgres'
            ${exclude}
            and ${inKeyOrder}
            and coalesce((select true from open_ns o
              where o.tenant_id = m.tenant_id and o.name = m.namespace limit 1), false)
          order by m.due_at, m.id
          limit ${limit}
          for update of m skip locked
        ) x
        join open_ns o on o.tenant_id = x.tenant_id and o.name = x.namespace
      ),
      in_namespace as (
        select u.*, row_number() over (partition by u.tenant_id, u.namespace order by u.due_at, u.id) as k
        from (select * from due union all select * from expired) u
      ),
      in_tenant as (
        select i.id, i.due_at, i.tenant_room,
          row_number() over (partition by i.tenant_id order by i.due_at, i.id) as k
        from in_namespace i
        where i.k <= i.room
      ),
      candidates as (
        select c.id from in_tenant c
        where c.k <= c.tenant_room
        order by c.due_at, c.id
        limit ${limit}
      ),
      leased as (
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
      )`;
}

// Planner settings of a lease, made at BEGIN (transaction-local). JIT off: a scan the planner must
// still make (wal.namespaces) costs as disabled, which would otherwise pass jit_above_cost and
// compile the statement (a second, where it runs in a millisecond).
const QUEUE_PLAN = { enable_seqscan: 'off', enable_bitmapscan: 'off', jit: 'off' } as const;

/**
 * Runs a lease in a transaction that forbids sorting where an index gives the order: on a table
 * without statistics yet (a new or truncated one) the planner would otherwise read and sort every
 * due row for each lease instead of walking each namespace's due messages up to its room. On
 * PostgreSQL that is three round trips: BEGIN with the settings, the statement, COMMIT
 * (withSystemSettings).
 */
function withQueuePlan<T>(db: Db, fn: (trx: Transaction<WalTables>) => Promise<T>): Promise<T> {
  return withSystemSettings(db, QUEUE_PLAN, fn);
}

function toLeased(rows: LeasedRow[]): LeasedMessage[] {
  return rows
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
}

export type CycleResult = {
  completed: FenceResult<{ id: string }>;
  failed: FenceResult<FailedMessage>;
  messages: LeasedMessage[];
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
      at: Date | string;
    }>`
    with completed as (${completeUpdate(completionsJson(completions))}),
    failed as (${failUpdate(failuresJson(failures))}),
    changed as (
      select id, tenant_id, attempts from completed
      union all select id, tenant_id, attempts from failed
    ),
    recorded as (${insertAttempts(attemptsJson(recorded))}),
    ${leaseCtes(options, exclude)}
    select
      (select coalesce(json_agg(l), '[]'::json) from leased l) as leased,
      (select coalesce(json_agg(c.id), '[]'::json) from completed c) as completed,
      (select coalesce(json_agg(f), '[]'::json) from failed f) as failed,
      now() as at`.execute(trx),
  );
  const row = result.rows[0] as (typeof result.rows)[number];
  const completedIds = (asJson(row.completed) as string[]).map((id) => ({ id }));
  const failed = (asJson(row.failed) as FailedRow[]).map(toFailed);
  return {
    completed: { updated: completedIds, stale: staleIds(completions, completedIds) },
    failed: { updated: failed, stale: staleIds(failures, failed) },
    messages: toLeased(asJson(row.leased) as LeasedRow[]),
    at: asDate(row.at),
  };
}

/**
 * Milliseconds until the queue next needs a look (by the database's clock; 0 or less: now): the
 * earliest due time of a waiting message or lease expiry of a delivering one after `since` (the
 * time of the last lease, so a row that fell due since is not missed); undefined when nothing
 * waits. Rows due by `since` and not leased are held by another consumer or wait behind their
 * key, whose completion loops that consumer again. One read-only statement, run without a
 * transaction (one round trip: it reads one snapshot all the same).
 */
export async function nextWakeInMs(db: Db, since?: Date): Promise<number | undefined> {
  const after = since ? sql`${since.toISOString()}::timestamptz` : sql`now()`;
  const result = await sql<{ ms: number | string | null }>`
      select (extract(epoch from least(
        (select min(m.due_at) from wal.messages m join wal.namespaces n on n.tenant_id = m.tenant_id
          and n.name = m.namespace and n.enabled and not n.paused
          where m.state in ('pending', 'scheduled', 'retrying') and m.backend = 'postgres'
            and m.due_at > ${after}),
        (select min(lease_expires_at) from wal.messages where state = 'delivering' and lease_expires_at >= ${after})
      ) - now()) * 1000)::double precision as ms`.execute(db);
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
  const input = items.map((i) => [i.id, i.leaseToken]);
  const result = await withSystem(db, (trx) =>
    sql<{ id: string }>`
      update wal.messages m
      set lease_expires_at = now() + ${leaseMs} * interval '1 millisecond'
      from ${jsonRows(LEASES, input)} as x
      where m.id = x.id and m.lease_token = x.lease_token and m.state = 'delivering'
      returning m.id`.execute(trx),
  );
  return result.rows.map((r) => r.id);
}
