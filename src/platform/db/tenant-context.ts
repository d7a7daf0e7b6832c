import { CompiledQuery, type DatabaseConnection, type Kysely, sql, type Transaction } from 'kysely';
import type pg from 'pg';
import {
  type CommitStatement,
  closeCommitQueues,
  flushCommitQueues,
  openCommitQueues,
  takeCommitStatements,
} from './commit-queues.ts';
import { pipelined } from './pipelined-connection.ts';

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
    return inTransactionWith(requests, all, fn, true);
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

async function withCommitQueues<DB, T>(trx: Transaction<DB>, fn: (trx: Transaction<DB>) => Promise<T>) {
  openCommitQueues(trx);
  try {
    const result = await fn(trx);
    await flushCommitQueues(trx);
    return result;
  } finally {
    closeCommitQueues(trx);
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
 * Runs fn in a transaction whose settings are made first, in fewer round trips where it can. On
 * node-postgres (useSimpleProtocol; its pools pipeline) BEGIN and the settings go out as ONE
 * simple-protocol query on a dedicated connection, and without waiting for its answer fn runs on
 * it: fn's first statement follows BEGIN on the wire. BEGIN's error, if any, is the one thrown
 * (fn's statements then fail too: they ran in the transaction BEGIN aborted). Then, with `queued`,
 * what fn queued for the commit (commitQueue) goes out together with the COMMIT, and COMMIT's answer
 * is checked: a transaction that an error fn caught had aborted answers ROLLBACK, and that fails
 * here instead of passing for committed. On any error, ROLLBACK (BEGIN's included: a failed setting
 * must not return the connection to the pool inside a transaction). Elsewhere (PGlite, one
 * in-process session where a round trip costs nothing) a Kysely transaction, then the settings.
 */
async function inTransactionWith<DB, T>(
  db: Kysely<DB>,
  settings: TransactionSettings,
  fn: (trx: Transaction<DB>) => Promise<T>,
  queued = false,
): Promise<T> {
  const select = settingsSelect(settings);
  if (!simpleProtocol.has(db))
    return db.transaction().execute(async (trx) => {
      if (select) await sql.raw(select).execute(trx);
      return queued ? withCommitQueues(trx, fn) : fn(trx);
    });
  return db.connection().execute(async (connection) => {
    // Its one connection, for the statements sent without waiting (executeQuery hands a query to
    // the client before its first await, so they go out in the order they are made here).
    const link = await connection.getExecutor().provideConnection(async (c) => c);
    // fn's Kysely offers everything a Transaction does but .transaction(), and sends the
    // statements fn makes together without waiting in between.
    const trx = pipelined(connection, link) as unknown as Transaction<DB>;
    const begun = link.executeQuery(CompiledQuery.raw(select ? `begin; ${select}` : 'begin'));
    begun.catch(() => {}); // awaited below, after fn
    let result: T;
    let last: CommitStatement[];
    if (queued) openCommitQueues(trx);
    try {
      result = await fn(trx);
      await begun;
      last = takeCommitStatements(trx);
    } catch (error) {
      // Fails only when the connection is gone (which ends the transaction too): fn's error tells more.
      await link.executeQuery(ROLLBACK).catch(() => {});
      throw await begun.then(
        () => error,
        (beginError: unknown) => beginError,
      );
    } finally {
      closeCommitQueues(trx);
    }
    await commitWith(link, last);
    return result;
  });
}

const ROLLBACK = CompiledQuery.raw('rollback');
const COMMIT = CompiledQuery.raw('commit');

/** Thrown when COMMIT answered ROLLBACK: a statement had failed and its error was caught. */
export class AbortedTransactionError extends Error {
  constructor() {
    super('the transaction was rolled back: a statement in it failed and its error was caught');
    this.name = 'AbortedTransactionError';
  }
}

/**
 * Sends `statements`, then COMMIT, without waiting in between (one round trip), and waits for
 * every answer before the connection goes back to the pool. A statement that fails aborts the
 * transaction, so COMMIT rolls it back: that statement's error (as its failure maps it) is thrown.
 */
async function commitWith(link: DatabaseConnection, statements: CommitStatement[]): Promise<void> {
  const sent = statements.map((statement) =>
    link.executeQuery(statement.query).then(
      () => undefined,
      (error: unknown) => {
        throw statement.failure ? statement.failure(error) : error;
      },
    ),
  );
  const committed = link.executeQuery(COMMIT);
  const outcomes = await Promise.allSettled([...sent, committed]);
  const failed = outcomes.find((outcome) => outcome.status === 'rejected');
  if (failed) throw failed.reason;
  const answer = await committed;
  if ((answer.rows[0] as { command?: string } | undefined)?.command === 'ROLLBACK')
    throw new AbortedTransactionError();
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
