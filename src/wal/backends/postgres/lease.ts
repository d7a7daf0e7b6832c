import { type Kysely, sql, type Transaction } from 'kysely';
import { withSystemSettings } from '../../../platform/db/index.ts';
import type { WalTables } from '../../tables.ts';
import { type LeaseOptions, leaseCtes } from './lease-ctes.ts';
import type { LeasedMessage } from './queue-types.ts';

type Db = Kysely<WalTables>;

export type LeasedRow = {
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

export const asDate = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));
export const asJson = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

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
      with recursive ${leaseCtes(options)}
      select leased.*, now() as at from (select 1) one left join leased on true`.execute(trx),
  );
  const at = asDate((result.rows[0] as { at: Date | string }).at);
  return { messages: toLeased(result.rows.filter((r) => r.id !== null)), at };
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
export function withQueuePlan<T>(db: Db, fn: (trx: Transaction<WalTables>) => Promise<T>): Promise<T> {
  return withSystemSettings(db, QUEUE_PLAN, fn);
}

export function toLeased(rows: LeasedRow[]): LeasedMessage[] {
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
