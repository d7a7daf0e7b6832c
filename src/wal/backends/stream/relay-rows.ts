import { sql, type Transaction } from 'kysely';
import type { BackendName, MessageState, WalTables } from '../../tables.ts';
import type { NewMessageRow } from '../postgres/group-commit.ts';
import type { StreamBackendName } from './contract.ts';

// The outbox rows the relay reads, and the statements that hand them to another backend.

export type WaitingRow = Omit<NewMessageRow, 'payload' | 'headers'> & {
  payload: string;
  headers: string;
  /** Sent there earlier (or about to be) without an answer: relay-marks.ts. */
  sent_to: StreamBackendName | null;
};

/** The first `batchSize` rows waiting for a stream backend, in id order, by (backend, tenant, namespace). */
export async function readWaiting(trx: Transaction<WalTables>, batchSize: number) {
  const { rows } = await sql<WaitingRow>`
    select id, tenant_id, namespace, message_id, ordering_key, payload::text as payload,
      headers::text as headers, request_hash, backend, state, due_at, max_attempts, created_at,
      sent_to
    from wal.messages
    where backend <> 'postgres' and state in ('pending', 'scheduled')
    order by id
    limit ${batchSize}`.execute(trx);
  const groups = new Map<string, WaitingRow[]>();
  for (const row of rows) {
    const normalized = {
      ...row,
      due_at: new Date(row.due_at),
      created_at: new Date(row.created_at),
      state: row.state as MessageState,
      backend: row.backend as BackendName,
    };
    const key = `${row.backend}\u0000${row.tenant_id}\u0000${row.namespace}`;
    groups.set(key, [...(groups.get(key) ?? []), normalized]);
  }
  return { count: rows.length, groups: [...groups.values()] };
}

/** The backends the namespace of `row` names now, read in the relay's transaction (lock: `for share`). */
export async function namedBy(trx: Transaction<WalTables>, row: WaitingRow, lock = false) {
  const { rows: found } = await sql<{ backend: BackendName; fallback: BackendName | null }>`
    select backend, fallback_backend as fallback from wal.namespaces
    where tenant_id = ${row.tenant_id} and name = ${row.namespace}
    ${lock ? sql`for share` : sql``}`.execute(trx);
  return found[0];
}

/**
 * Gives the rows to backend `to` (postgres: its consumers deliver them; a stream one: the relay's
 * next pass appends them), no longer marked: never sent where they were, or that backend said it
 * does not hold them (relay-marks.ts).
 */
export async function handOn(trx: Transaction<WalTables>, ids: readonly string[], to: BackendName) {
  await sql`update wal.messages set backend = ${to}, sent_to = null where id = any(${[...ids]}::uuid[])`.execute(
    trx,
  );
  // An update fires no insert trigger: wake the postgres consumers, or the relay, on commit.
  await sql`select pg_notify(${to === 'postgres' ? 'mercato_wal_ready' : 'mercato_wal_relay'}, '')`.execute(
    trx,
  );
}
