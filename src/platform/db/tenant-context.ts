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
  useSimpleProtocol(requests.kysely);
}

// Kyselys over node-postgres, where a query without parameters goes out by the simple protocol
// and may hold several statements. PGlite's driver sends every query by the extended protocol,
// which takes one ("cannot insert multiple commands into a prepared statement").
const simpleProtocol = new WeakSet<object>();

/**
 * Marks a Kysely as one over node-postgres (openPostgres marks its pools'): withSystemSettings
 * and withTenant send BEGIN and their settings there as one query.
 */
export function useSimpleProtocol(kysely: Kysely<unknown>): void {
  simpleProtocol.add(kysely);
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
 * APP_ROLE: even SQL that resets the role inside it stays under row-level security; there BEGIN
 * and the settings are one round trip (inTransactionWith), the tenant id inlined after it
 * matched a strict UUID pattern (a tenant id never comes from a request's text).
 */
export async function withTenant<DB, T>(
  db: Kysely<DB>,
  tenantId: string,
  fn: (trx: Transaction<DB>) => Promise<T>,
  /** More transaction-local settings (planner settings: withSystemSettings' rules), made with the tenant's. */
  settings?: TransactionSettings,
): Promise<T> {
  const requests = requestPools.get(db)?.kysely as Kysely<DB> | undefined;
  if (requests && UUID.test(tenantId)) {
    const all = { ...settings, role: APP_ROLE, 'app.tenant_id': tenantId.toLowerCase() };
    return inTransactionWith(requests, all, (trx) => withCommitQueues(trx, fn));
  }
  const target = requests ?? db;
  const more = settings && settingsSelect(settings);
  return target.transaction().execute(async (trx) => {
    await sql`select set_config('role', ${APP_ROLE}, true), set_config('app.tenant_id', ${tenantId}, true)`.execute(
      trx,
    );
    if (more) await sql.raw(more).execute(trx);
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

/** Transaction-local settings: name → value, as `set_config(name, value, true)` (SET LOCAL) makes them. */
export type TransactionSettings = Readonly<Record<string, string>>;

const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;
// A value is inlined into the query text: no quote, backslash or space can reach it.
const SETTING_VALUE = /^[A-Za-z0-9_.:-]*$/;

/** `select set_config(…, true), …` for settings, as text without parameters; undefined when none. */
function settingsSelect(settings: TransactionSettings): string | undefined {
  const calls = Object.entries(settings).map(([name, value]) => {
    if (!SETTING_NAME.test(name)) throw new TypeError(`not a setting name: ${JSON.stringify(name)}`);
    if (!SETTING_VALUE.test(value))
      throw new TypeError(`setting ${name}: only letters, digits and _ . : - may be inlined`);
    return `set_config('${name}', '${value}', true)`;
  });
  return calls.length > 0 ? `select ${calls.join(', ')}` : undefined;
}

/**
 * Runs fn in a transaction whose settings are made first, in one round trip fewer where it can:
 * on node-postgres (useSimpleProtocol) BEGIN and the settings go out as ONE simple-protocol query
 * on a dedicated connection, fn runs on it, then COMMIT, or ROLLBACK on any error (BEGIN's
 * included: a failed setting must not return the connection to the pool inside a transaction).
 * Elsewhere (PGlite, one in-process session where a round trip costs nothing) a Kysely
 * transaction, then the settings.
 */
async function inTransactionWith<DB, T>(
  db: Kysely<DB>,
  settings: TransactionSettings,
  fn: (trx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  const select = settingsSelect(settings);
  if (!simpleProtocol.has(db))
    return db.transaction().execute(async (trx) => {
      if (select) await sql.raw(select).execute(trx);
      return fn(trx);
    });
  return db.connection().execute(async (connection) => {
    let result: T;
    try {
      await sql.raw(select ? `begin; ${select}` : 'begin').execute(connection);
      // The connection-bound Kysely offers everything a Transaction does but .transaction().
      result = await fn(connection as unknown as Transaction<DB>);
    } catch (error) {
      // Fails only when the connection is gone (which ends the transaction too): fn's error tells more.
      await sql
        .raw('rollback')
        .execute(connection)
        .catch(() => {});
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

/**
 * withSystem with transaction-local settings made before fn runs (`set_config(name, value,
 * true)`: they end with the transaction), e.g. planner settings for one statement. On PostgreSQL
 * BEGIN and the settings are one round trip, then fn's statements, then COMMIT; on PGlite a
 * transaction, then one statement for the settings. Values are inlined into the query text, so
 * only letters, digits and `_ . : -` are accepted (no request input belongs there anyway).
 */
export async function withSystemSettings<DB, T>(
  db: Kysely<DB>,
  settings: TransactionSettings,
  fn: (trx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  return inTransactionWith(db, settings, fn);
}
