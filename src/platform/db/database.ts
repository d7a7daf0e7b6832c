import { mkdirSync } from 'node:fs';
import type { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect, PostgresDialect } from 'kysely';
import pg from 'pg';

// int8 (bigint) and numeric come back as strings by default; counts and minor units fit in a double.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** Raw access for multi-statement SQL (migrations): pg's simple protocol or PGlite's exec. */
export type ScriptRunner = {
  exec(sqlText: string): Promise<void>;
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
  close(): Promise<void>;
};

export type DatabaseOptions = { databaseUrl?: string | undefined; dataDir?: string; poolSize?: number };

/** Opens PostgreSQL when databaseUrl is given, else PGlite in dataDir (in memory when dataDir is 'memory://'). */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options.poolSize ?? 20);
  return openPglite(await createPglite(options.dataDir ?? 'memory://'));
}

/** Creates a PGlite instance, creating its directory when it is on disk. */
export async function createPglite(dataDir: string, loadDataDir?: Blob): Promise<PGlite> {
  if (!dataDir.includes('://')) mkdirSync(dataDir, { recursive: true });
  // Loaded on demand: a process on PostgreSQL never pays for the WebAssembly build.
  const { PGlite } = await import('@electric-sql/pglite');
  return PGlite.create(dataDir, loadDataDir ? { loadDataDir } : {});
}

export function openPostgres(connectionString: string, poolSize: number): Database {
  const pool = new pg.Pool({ connectionString, max: poolSize, idleTimeoutMillis: 30_000 });
  pool.on('error', () => {
    // An idle client lost its connection; the pool replaces it on the next checkout.
  });
  return {
    kind: 'postgres',
    kysely: new Kysely({ dialect: new PostgresDialect({ pool }) }),
    async withScriptRunner(fn) {
      const client = await pool.connect();
      try {
        return await fn({
          async exec(sqlText) {
            await client.query(sqlText);
          },
          async query(sqlText, params) {
            return (await client.query(sqlText, params)).rows;
          },
        });
      } finally {
        client.release();
      }
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close() {
      await pool.end();
    },
  };
}

export function openPglite(pglite: PGlite): Database {
  const kysely = new Kysely({ dialect: new PGliteDialect({ pglite }) });
  return {
    kind: 'pglite',
    kysely,
    async withScriptRunner(fn) {
      // PGlite is one connection; Kysely's driver serialises access, so borrow its connection.
      return kysely.connection().execute(() =>
        fn({
          async exec(sqlText) {
            await pglite.exec(sqlText);
          },
          async query(sqlText, params) {
            return (await pglite.query(sqlText, params)).rows as never[];
          },
        }),
      );
    },
    poolStats: () => ({ total: 1, idle: 1, waiting: 0 }),
    async close() {
      await kysely.destroy();
      if (!pglite.closed) await pglite.close();
    },
  };
}
