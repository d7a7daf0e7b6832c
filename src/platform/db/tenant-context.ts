import { type Kysely, sql, type Transaction } from 'kysely';
import type pg from 'pg';

/** The NOLOGIN role every request transaction runs as; it owns no table and cannot bypass RLS. */
export const APP_ROLE = 'mercato_app';

type RequestPool = { kysely: Kysely<unknown>; pool: pg.Pool };

// The owner's Kysely → the pool that logs in as the request role (PostgreSQL).
const requestPools = new WeakMap<object, RequestPool>();

/** Makes withTenant(owner, …) run on the request pool; called once the request role exists. */
export function useRequestPool(owner: Kysely<unknown>, requests: RequestPool): void {
  requestPools.set(owner, requests);
}

/** The raw request pool behind an owner Kysely, when there is one (PostgreSQL). */
export function requestPoolOf(owner: object): pg.Pool | undefined {
  return requestPools.get(owner)?.pool;
}

/**
 * Runs fn in a transaction scoped to one tenant: the role is switched to APP_ROLE and
 * `app.tenant_id` set, both transaction-local, so row-level security holds even for a query
 * that forgets its tenant filter. One statement sets both, to keep the round trips down.
 * On PostgreSQL the transaction runs on the request pool, whose login role is only a member of
 * APP_ROLE: even SQL that resets the role inside it stays under row-level security.
 */
export async function withTenant<DB, T>(
  db: Kysely<DB>,
  tenantId: string,
  fn: (trx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  const requests = requestPools.get(db)?.kysely as Kysely<DB> | undefined;
  if (requests && UUID.test(tenantId)) return onRequestPool(requests, tenantId.toLowerCase(), fn);
  const target = requests ?? db;
  return target.transaction().execute(async (trx) => {
    await sql`select set_config('role', ${APP_ROLE}, true), set_config('app.tenant_id', ${tenantId}, true)`.execute(
      trx,
    );
    return withCommitQueues(trx, fn);
  });
}

type CommitQueue = { items: unknown[]; flush(items: unknown[]): Promise<void> };

// A withTenant transaction in progress → what its callers queued for just before its commit.
const commitQueues = new WeakMap<object, Map<object, CommitQueue>>();

/**
 * The items `owner` queued in `trx` (a withTenant transaction in progress), to push to: on first
 * use the list is made and `flush` set to receive it in `trx` just before the commit, once, after
 * the caller's work (a rollback drops the list). Undefined when `trx` is no withTenant
 * transaction in progress: the caller writes at once. The domain events use it to write all of a
 * transaction's events in one outbox insert.
 */
export function commitQueue<T>(
  trx: object,
  owner: object,
  flush: (items: T[]) => Promise<void>,
): T[] | undefined {
  const queues = commitQueues.get(trx);
  if (!queues) return undefined;
  let queue = queues.get(owner);
  if (!queue) {
    queue = { items: [], flush: flush as CommitQueue['flush'] };
    queues.set(owner, queue);
  }
  return queue.items as T[];
}

/**
 * Writes what is queued in `trx` now rather than at its commit (a no-op outside a withTenant
 * transaction): before a savepoint is released, so its rollback could still undo the writes; before
 * taking a hot row's lock, so the writes are not made while holding it.
 */
export async function flushCommitQueues(trx: object): Promise<void> {
  const queues = commitQueues.get(trx);
  if (!queues) return;
  // A flush may queue more (an event published while flushing): until nothing is left.
  for (let next = queues.entries().next(); !next.done; next = queues.entries().next()) {
    const [owner, queue] = next.value;
    queues.delete(owner);
    if (queue.items.length > 0) await queue.flush(queue.items);
  }
}

/** Forgets what is queued in `trx`: after a rollback to a savepoint taken with the queues empty. */
export function discardCommitQueues(trx: object): void {
  commitQueues.get(trx)?.clear();
}

async function withCommitQueues<DB, T>(trx: Transaction<DB>, fn: (trx: Transaction<DB>) => Promise<T>) {
  commitQueues.set(trx, new Map<object, CommitQueue>());
  try {
    const result = await fn(trx);
    await flushCommitQueues(trx);
    return result;
  } finally {
    commitQueues.delete(trx);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * withTenant on PostgreSQL's request pool in one round trip fewer: BEGIN and the settings go
 * out as one simple-protocol query (no parameters, so node-postgres sends them together). The
 * only value in that text is the tenant id, inlined after it matched a strict UUID pattern (a
 * tenant id never comes from a request's text). Commit, or roll back on any error.
 */
async function onRequestPool<DB, T>(
  requests: Kysely<DB>,
  tenantId: string,
  fn: (trx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  return requests.connection().execute(async (connection) => {
    await sql
      .raw(
        `begin; select set_config('role', '${APP_ROLE}', true), set_config('app.tenant_id', '${tenantId}', true)`,
      )
      .execute(connection);
    let result: T;
    try {
      // The connection-bound Kysely offers everything a Transaction does but .transaction().
      result = await withCommitQueues(connection as unknown as Transaction<DB>, fn);
    } catch (error) {
      await sql.raw('rollback').execute(connection);
      throw error;
    }
    await sql.raw('commit').execute(connection);
    return result;
  });
}

/**
 * Runs fn in a transaction with the connecting (owner) role, outside any tenant. Only for
 * platform work that has no tenant yet: resolving a tenant slug, a credential lookup by hash,
 * creating a tenant, purge jobs.
 */
export async function withSystem<DB, T>(
  db: Kysely<DB>,
  fn: (trx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  return db.transaction().execute(fn);
}
