import { sql, type Transaction } from 'kysely';
import { isoTime as iso } from '../../platform/db/index.ts';
import type { AttemptHistory, StreamBackendName, StreamMessage } from '../backends/stream/contract.ts';
import type { WalTables } from '../tables.ts';

type Trx = Transaction<WalTables>;

/** Which dead letters: error text (substring, any case), a failing target, dead between from and to. */
export type DeadLetterFilter = { error?: string; target?: string; from?: string; to?: string };

/** Where a page starts: after this (dead_at, id), newest first. */
export type DeadLetterCursor = { deadAt: string; id: string };

export type DeadLetter = {
  deliveryId: string;
  messageId: string;
  key: string | null;
  payload: unknown;
  headers: Record<string, string>;
  attempts: number;
  lastError: string | null;
  targetsDone: string[];
  deadAt: string;
  createdAt: string;
};

export type AttemptView = {
  attempt: number;
  target: string;
  startedAt: string;
  finishedAt: string;
  outcome: string;
  statusCode: number | null;
  error: string | null;
};

type Row = {
  id: string;
  message_id: string;
  ordering_key: string | null;
  payload: unknown;
  headers: unknown;
  attempts: number;
  last_error: string | null;
  targets_done: string[];
  dead_at: string;
  created_at: Date | string;
};

const ISO_US = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;
const asJson = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

function toDeadLetter(r: Row): DeadLetter {
  return {
    deliveryId: r.id,
    messageId: r.message_id,
    key: r.ordering_key,
    payload: asJson(r.payload),
    headers: asJson(r.headers) as Record<string, string>,
    attempts: r.attempts,
    lastError: r.last_error,
    targetsDone: r.targets_done,
    deadAt: r.dead_at,
    createdAt: iso(r.created_at),
  };
}

function where(tenantId: string, namespace: string, filter: DeadLetterFilter) {
  return sql`m.tenant_id = ${tenantId} and m.namespace = ${namespace} and m.state = 'dead'
    ${filter.error ? sql`and strpos(lower(coalesce(m.last_error, '')), lower(${filter.error})) > 0` : sql``}
    ${
      filter.target
        ? sql`and exists (select 1 from wal.attempts a where a.message_pk = m.id and a.target = ${filter.target}
            and a.outcome in ('failed', 'dead'))`
        : sql``
    }
    ${filter.from ? sql`and m.dead_at >= ${filter.from}::timestamptz` : sql``}
    ${filter.to ? sql`and m.dead_at < ${filter.to}::timestamptz` : sql``}`;
}

const columns = sql.raw(`m.id, m.message_id, m.ordering_key, m.payload, m.headers, m.attempts, m.last_error,
  m.targets_done, to_char(m.dead_at at time zone 'UTC', ${ISO_US}) as dead_at, m.created_at`);

/** Whether the tenant has this namespace. */
export async function namespaceExists(trx: Trx, tenantId: string, namespace: string): Promise<boolean> {
  const { rows } = await sql`
    select 1 from wal.namespaces where tenant_id = ${tenantId} and name = ${namespace}`.execute(trx);
  return rows.length > 0;
}

/** A page of dead letters, newest first; ask for limit + 1 to learn whether another page follows. */
export async function listDeadLetters(
  trx: Trx,
  tenantId: string,
  namespace: string,
  filter: DeadLetterFilter,
  limit: number,
  after?: DeadLetterCursor,
): Promise<DeadLetter[]> {
  const { rows } = await sql<Row>`
    select ${columns} from wal.messages m
    where ${where(tenantId, namespace, filter)}
      ${after ? sql`and (m.dead_at, m.id) < (${after.deadAt}::timestamptz, ${after.id}::uuid)` : sql``}
    order by m.dead_at desc, m.id desc
    limit ${limit}`.execute(trx);
  return rows.map(toDeadLetter);
}

/** One dead letter with every attempt it went through; undefined when it is not dead. */
export async function getDeadLetter(
  trx: Trx,
  tenantId: string,
  namespace: string,
  messageId: string,
): Promise<(DeadLetter & { history: AttemptView[] }) | undefined> {
  const { rows } = await sql<Row>`
    select ${columns} from wal.messages m
    where ${where(tenantId, namespace, {})} and m.message_id = ${messageId}`.execute(trx);
  const row = rows[0];
  if (!row) return undefined;
  const history = await sql<{
    attempt: number;
    target: string;
    started_at: Date | string;
    finished_at: Date | string;
    outcome: string;
    status_code: number | null;
    error: string | null;
  }>`
    select attempt, target, started_at, finished_at, outcome, status_code, error from wal.attempts
    where message_pk = ${row.id} order by attempt, started_at, target`.execute(trx);
  return {
    ...toDeadLetter(row),
    history: history.rows.map((a) => ({
      attempt: a.attempt,
      target: a.target,
      startedAt: iso(a.started_at),
      finishedAt: iso(a.finished_at),
      outcome: a.outcome,
      statusCode: a.status_code,
      error: a.error,
    })),
  };
}

/** A dead letter of any tenant, as a sweep across tenants reads it (the exception collector's). */
export type TenantDeadLetter = Omit<DeadLetter, 'targetsDone'> & { tenantId: string; namespace: string };

/**
 * Dead letters of every tenant dead at or after `since`, oldest first, after `after` (the last
 * one of the previous page): the exception collector's sweep for deaths its listener missed. Run
 * with withSystem. Reads the retention index (state dead, by dead_at).
 */
export async function listDeadSince(
  trx: Trx,
  since: Date,
  limit: number,
  after?: DeadLetterCursor,
): Promise<TenantDeadLetter[]> {
  const { rows } = await sql<Row & { tenant_id: string; namespace: string }>`
    select ${columns}, m.tenant_id, m.namespace from wal.messages m
    where m.state = 'dead' and coalesce(m.delivered_at, m.dead_at) >= ${since}
      ${after ? sql`and (coalesce(m.delivered_at, m.dead_at), m.id) > (${after.deadAt}::timestamptz, ${after.id}::uuid)` : sql``}
    order by coalesce(m.delivered_at, m.dead_at), m.id
    limit ${limit}`.execute(trx);
  return rows.map((r) => {
    const { targetsDone: _, ...letter } = toDeadLetter(r);
    return { ...letter, tenantId: r.tenant_id, namespace: r.namespace };
  });
}

/**
 * Puts dead letters back in the queue (one message, or every one matching the filter): due now,
 * attempts from zero, the targets already reached kept; the attempts table keeps the history.
 * Consumers are woken on commit. Returns how many were requeued.
 */
export async function requeueDeadLetters(
  trx: Trx,
  tenantId: string,
  namespace: string,
  selection: { messageId: string } | { filter: DeadLetterFilter },
): Promise<number> {
  const filter = 'filter' in selection ? selection.filter : {};
  const one = 'messageId' in selection ? sql`and m.message_id = ${selection.messageId}` : sql``;
  const { rows } = await sql<{ n: number }>`
    with requeued as (
      update wal.messages m
      set state = 'pending', due_at = now(), attempts = 0, dead_at = null, lease_token = null, lease_expires_at = null
      where ${where(tenantId, namespace, filter)} ${one}
      returning 1
    )
    select count(*)::int as n from requeued`.execute(trx);
  const n = rows[0]?.n ?? 0;
  // Requeued rows of every backend: the postgres consumers and the relay (stream backends) both look.
  if (n > 0)
    await sql`select pg_notify('mercato_wal_ready', ''), pg_notify('mercato_wal_relay', '')`.execute(trx);
  return n;
}

/** Deletes one dead letter (and its attempts); returns what was discarded, for the audit log. */
export async function discardDeadLetter(
  trx: Trx,
  tenantId: string,
  namespace: string,
  messageId: string,
): Promise<{ deliveryId: string; lastError: string | null; attempts: number } | undefined> {
  const { rows } = await sql<{ id: string; last_error: string | null; attempts: number }>`
    delete from wal.messages m where ${where(tenantId, namespace, {})} and m.message_id = ${messageId}
    returning m.id, m.last_error, m.attempts`.execute(trx);
  const row = rows[0];
  return row ? { deliveryId: row.id, lastError: row.last_error, attempts: row.attempts } : undefined;
}

/** A dead letter of a stream backend, as recordDeadLetter writes it: the message, dates as Date. */
export type ExternalDeadLetter = Omit<StreamMessage, 'dueAt' | 'createdAt'> & {
  backend: StreamBackendName;
  dueAt: Date;
  createdAt: Date;
  error: string;
  history: AttemptHistory;
};

/**
 * Writes a stream backend's dead letter, with its whole attempt history, into wal.messages
 * (state dead) and wal.attempts, so the dead letters of every backend are listed, requeued and
 * discarded in one place. Run in the tenant's transaction. A row left by an earlier death of the
 * same message is replaced.
 */
export async function recordDeadLetter(trx: Trx, dead: ExternalDeadLetter): Promise<void> {
  await sql`
    delete from wal.messages
    where tenant_id = ${dead.tenantId} and namespace = ${dead.namespace} and message_id = ${dead.messageId}`.execute(
    trx,
  );
  await trx
    .insertInto('wal.messages')
    .values({
      id: dead.id,
      tenant_id: dead.tenantId,
      namespace: dead.namespace,
      message_id: dead.messageId,
      ordering_key: dead.key,
      payload: dead.payload,
      headers: dead.headers,
      request_hash: dead.requestHash,
      backend: dead.backend,
      state: 'dead',
      due_at: dead.dueAt,
      attempts: dead.attempts,
      max_attempts: dead.maxAttempts,
      targets_done: dead.targetsDone,
      last_error: dead.error,
      created_at: dead.createdAt,
      dead_at: new Date(),
    })
    .execute();
  if (dead.history.length === 0) return;
  await trx
    .insertInto('wal.attempts')
    .values(
      dead.history.map((a) => ({
        message_pk: dead.id,
        tenant_id: dead.tenantId,
        attempt: a.attempt,
        target: a.target,
        started_at: a.startedAt,
        finished_at: a.finishedAt,
        outcome: a.outcome,
        status_code: a.statusCode ?? null,
        error: a.error ?? null,
      })),
    )
    .onConflict((oc) => oc.doNothing())
    .execute();
}
