import { mkdirSync } from 'node:fs';
import type { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect, PostgresDialect } from 'kysely';
import pg from 'pg';
import { connectWithRetry, describeDatabase } from './connect-retry.ts';
import { type Listener, pgliteListener, postgresListener } from './notifications.ts';
import { prepareStatements } from './prepared-statements.ts';
import { ensureRequestRole, RequestRoleError } from './request-role.ts';
import { useRequestPool, useSimpleProtocol } from './tenant-context.ts';

// int8 (bigint) and numeric come back as strings by default; counts and minor units fit in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** Raw access for multi-statement SQL (migrations): pg's simple protocol or PGlite's exec. */
export type ScriptRunner = {
  exec(sqlText: string): Promise<void>;
  /**
   * Runs sqlText as exactly one statement, over the extended protocol: PostgreSQL refuses a
   * text holding more than one ("cannot insert multiple commands into a prepared statement")
   * before running any of it, and runs one statement outside any implicit transaction block,
   * which CREATE INDEX CONCURRENTLY needs.
   */
  statement(sqlText: string): Promise<void>;
  query<R = Record<string, unknown>>(sqlText: string, params?: unknown[]): Promise<R[]>;
};

export type PoolStats = { total: number; idle: number; waiting: number };

/** One database handle: Kysely for queries plus what the platform needs around it. */
export type Database = {
  kind: 'postgres' | 'pglite';
  // biome-ignore lint/suspicious/noExplicitAny: each module narrows this to its own tables.
  kysely: Kysely<any>;
  /** Runs fn with one dedicated raw connection (held for the whole call). */
  withScriptRunner<T>(fn: (runner: ScriptRunner) => Promise<T>): Promise<T>;
  poolStats(): PoolStats;
  /**
   * On PostgreSQL, routes withTenant transactions to a pool that logs in as this database's
   * request role (see request-role.ts). False until migrations have created what it needs;
   * a no-op on PGlite, which has one superuser session.
   */
  enableRequestRole(): Promise<boolean>;
  /**
   * Subscribes to NOTIFY on a channel; resolves with an unsubscribe function. onReset runs when
   * notifications may have been lost (PostgreSQL connection dropped), so subscribers can resync.
   */
  listen: Listener['listen'];
  close(): Promise<void>;
};

export type DatabaseOptions = {
  databaseUrl?: string | undefined;
  dataDir?: string;
  poolSize?: number;
  /** statement_timeout of every PostgreSQL session, in ms (idle_in_transaction_session_timeout is twice it). */
  statementTimeoutMs?: number;
  /** How long to keep trying an unreachable PostgreSQL before giving up (default 30 s). */
  connectTimeoutSeconds?: number;
  /** Told each failed attempt to reach PostgreSQL, as one line naming host:port/database. */
  onConnectRetry?: (line: string) => void;
};

/** The default of MERCATO_DB_STATEMENT_TIMEOUT_MS. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 5000;

/**
 * Opens PostgreSQL when databaseUrl is given, else PGlite in dataDir (in memory when dataDir is
 * 'memory://'). An unreachable PostgreSQL is retried with backoff for connectTimeoutSeconds.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) {
    const db = openPostgres(options.databaseUrl, options.poolSize ?? 20, {
      statementTimeoutMs: options.statementTimeoutMs,
    });
    try {
      await connectWithRetry(() => db.enableRequestRole(), {
        where: describeDatabase(options.databaseUrl),
        timeoutSeconds: options.connectTimeoutSeconds ?? 30,
        onRetry: (line) => options.onConnectRetry?.(line),
      });
    } catch (error) {
      await db.close();
      throw error;
    }
    return db;
  }
  return openPglite(await createPglite(options.dataDir ?? 'memory://'));
}

/** Creates a PGlite instance, creating its directory when it is on disk. */
export async function createPglite(dataDir: string, loadDataDir?: Blob): Promise<PGlite> {
  if (!dataDir.includes('://')) mkdirSync(dataDir, { recursive: true });
  // Loaded on demand: a process on PostgreSQL never pays for the WebAssembly build.
  const { PGlite } = await import('@electric-sql/pglite');
  // pg_trgm: catalog search's typo tolerance (migration 0017 creates the extension).
  const { pg_trgm } = await import('@electric-sql/pglite/contrib/pg_trgm');
  return PGlite.create(dataDir, { extensions: { pg_trgm }, ...(loadDataDir ? { loadDataDir } : {}) });
}

/**
 * A pool whose every session runs under statement_timeout and idle_in_transaction_session_timeout
 * (startup options: they hold from the first statement, whatever runs on the connection).
 * Waiting for a connection is bounded too: past 10 s it fails (503 DATABASE_UNAVAILABLE)
 * instead of hanging when the server does not answer.
 */
function createPool(connectionString: string, max: number, statementTimeoutMs: number): pg.Pool {
  const ms = Math.max(1, Math.floor(statementTimeoutMs));
  const pool = new pg.Pool({
    connectionString,
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    // A query made while another is in flight on the same client goes out at once instead of
    // after its answer: a transaction's BEGIN and first statement, its last statement and COMMIT,
    // travel together (tenant-context.ts). Kysely still runs a transaction's own queries in turn.
    pipeline: true,
    options: `-c statement_timeout=${ms} -c idle_in_transaction_session_timeout=${ms * 2}`,
  });
  pool.on('error', () => {
    // An idle client lost its connection; the pool replaces it on the next checkout.
  });
  // A client in use whose session ends (server restart, admin_shutdown, idle-in-transaction
  // timeout) emits 'error' besides failing its query; unheard, that event would end the process.
  pool.on('connect', (client) => {
    client.on('error', () => {});
    prepareStatements(client);
  });
  return pool;
}

/**
 * PostgreSQL with two pools: the owner's (migrations, withSystem; a quarter of poolSize) and,
 * once enableRequestRole() ran, the request role's (withTenant; poolSize).
 */
export function openPostgres(
  connectionString: string,
  poolSize: number,
  options: { statementTimeoutMs?: number | undefined } = {},
): Database {
  const timeoutMs = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = createPool(connectionString, Math.max(2, Math.ceil(poolSize / 4)), timeoutMs);
  const kysely = new Kysely({ dialect: new PostgresDialect({ pool }) });
  useSimpleProtocol(kysely);
  let requests: { pool: pg.Pool; kysely: Kysely<unknown> } | undefined;
  const listener = postgresListener(connectionString);
  return {
    kind: 'postgres',
    kysely,
    listen: listener.listen,
    async enableRequestRole() {
      if (requests) return true;
      const url = await ensureRequestRole(connectionString);
      if (!url) return false;
      const requestPool = createPool(url, poolSize, timeoutMs);
      try {
        await requestPool.query('select 1');
      } catch (error) {
        await requestPool.end();
        throw new RequestRoleError(
          `the request role could not log in: ${(error as Error).message}. Allow it in pg_hba.conf ` +
            '(it logs in with a password, to the same host and database as DATABASE_URL)',
          { cause: error },
        );
      }
      requests = {
        pool: requestPool,
        kysely: new Kysely({ dialect: new PostgresDialect({ pool: requestPool }) }),
      };
      useRequestPool(kysely, requests);
      return true;
    },
    async withScriptRunner(fn) {
      const client = await pool.connect();
      try {
        return await fn({
          async exec(sqlText) {
            await client.query(sqlText);
          },
          async statement(sqlText) {
            // pg 8's queryMode, which its types do not list yet.
            await client.query({ text: sqlText, queryMode: 'extended' } as pg.QueryConfig);
          },
          async query(sqlText, params) {
            return (await client.query(sqlText, params)).rows;
          },
        });
      } finally {
        client.release();
      }
    },
    poolStats: () => {
      const p = requests?.pool ?? pool;
      return { total: p.totalCount, idle: p.idleCount, waiting: p.waitingCount };
    },
    async close() {
      await listener.close();
      // Kysely ends a pool only if it ever ran a query on it; end whatever is still open.
      await Promise.all([requests?.kysely.destroy(), kysely.destroy()]);
      for (const p of [pool, requests?.pool]) if (p && !p.ended) await p.end();
    },
  };
}

/**
 * PGlite: one embedded session. It accepts statement_timeout but cannot enforce it (WebAssembly
 * has no timer signal to cancel a running statement), so none is set: a slow statement there
 * holds the one session until it ends. Production runs on PostgreSQL, where the timeouts hold.
 */
export function openPglite(pglite: PGlite): Database {
  const kysely = new Kysely({ dialect: new PGliteDialect({ pglite }) });
  const listener = pgliteListener(pglite);
  return {
    kind: 'pglite',
    kysely,
    listen: listener.listen,
    async withScriptRunner(fn) {
      // PGlite is one connection; Kysely's driver serialises access, so borrow its connection.
      return kysely.connection().execute(() =>
        fn({
          async exec(sqlText) {
            await pglite.exec(sqlText);
          },
          async statement(sqlText) {
            await pglite.query(sqlText); // PGlite's query is always the extended protocol
          },
          async query(sqlText, params) {
            return (await pglite.query(sqlText, params)).rows as never[];
          },
        }),
      );
    },
    poolStats: () => ({ total: 1, idle: 1, waiting: 0 }),
    enableRequestRole: async () => false,
    async close() {
      await kysely.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
}
