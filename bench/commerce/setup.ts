/**
 * The set-up of `npm run bench:commerce`: the knobs, a fresh database, Mercato's server
 * (`mercato start`, as users run it) and the floor server, each a child process, and the bench
 * tenant created through the platform's own route. `npm run bench:checkout` uses the same helpers
 * on a database of its own (useDatabase).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runMercato } from '../../src/cli/mercato-process.ts';
import { type Api, apiAt, login } from './api.ts';

const env = process.env;
export const PRODUCTS = Number(env['BENCH_PRODUCTS'] ?? 100_000);
export const SEED = Number(env['BENCH_SEED'] ?? 20261201);
export const DURATION = Number(env['BENCH_DURATION'] ?? 10);
export const WARMUP = Number(env['BENCH_WARMUP'] ?? 2);
export const HOT_STOCK = Number(env['BENCH_HOT_STOCK'] ?? 10_000);
export const BATCH_SIZE = Number(env['BENCH_BATCH_SIZE'] ?? 1000);
export const IMPORT_IN_FLIGHT = Number(env['BENCH_IMPORT_IN_FLIGHT'] ?? 2);
export const WORKERS = env['MERCATO_WORKERS'] ?? '1';
export const adminUrl = env['BENCH_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** A database of the bench's PostgreSQL server, by name. */
export const urlOf = (name: string) => Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
/** The bench database (bench:commerce's unless useDatabase names another) and its URL. */
export let DB = 'mercato_bench_commerce';
export let databaseUrl = urlOf(DB);
/** Points every helper here (sql, createDatabase, startMercato, waitForQuiet…) at another database. */
export function useDatabase(name: string): void {
  DB = name;
  databaseUrl = urlOf(name);
}
export const TENANT = 'bench';
export const PASSWORD = 'bench-password-1234';
export const ADMIN_EMAIL = 'admin@bench.test';

/** One statement at `url` (default: the bench database as the superuser). */
export async function sql<T = Record<string, unknown>>(
  text: string,
  values: unknown[] = [],
  url = databaseUrl,
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}

export async function serverVersion(): Promise<string> {
  const [row] = await sql<{ server_version: string }>('show server_version', [], adminUrl);
  return row!.server_version.split(' ')[0]!;
}

/** A new, empty bench database; returns the server's version. */
export async function createDatabase(): Promise<string> {
  await sql(`drop database if exists ${DB} with (force)`, [], adminUrl);
  await sql(`create database ${DB}`, [], adminUrl);
  return serverVersion();
}

export const dropDatabase = () => sql(`drop database if exists ${DB} with (force)`, [], adminUrl);

export type Server = { base: string; stop(): Promise<void> };

/** Mercato's environment for the bench: rate limits out of the way (as bench:http does). */
const mercatoEnv = (): Record<string, string> => ({
  DATABASE_URL: databaseUrl,
  PORT: '0',
  LOG_LEVEL: 'warn',
  MERCATO_WORKERS: WORKERS,
  MERCATO_DEMO: 'true',
  MERCATO_DEMO_PASSWORD: PASSWORD,
  MERCATO_RATE_LIMIT_ANONYMOUS: '100000000',
  MERCATO_RATE_LIMIT_AUTHENTICATED: '100000000',
  MERCATO_LOGIN_RATE_LIMIT: '100000000',
  MERCATO_LOGIN_MAX_FAILURES: '100000000',
  ...(env['MERCATO_DB_POOL_SIZE'] ? { MERCATO_DB_POOL_SIZE: env['MERCATO_DB_POOL_SIZE'] } : {}),
  // false: no event is delivered (what delivery costs a load), and waitForQuiet waits for none.
  ...(env['MERCATO_WAL_DELIVERY'] ? { MERCATO_WAL_DELIVERY: env['MERCATO_WAL_DELIVERY'] } : {}),
  // Node flags for the server only (a CPU profile: --cpu-prof --cpu-prof-dir=/tmp/prof).
  ...(env['BENCH_SERVER_NODE_OPTIONS'] ? { NODE_OPTIONS: env['BENCH_SERVER_NODE_OPTIONS'] } : {}),
});

/**
 * Runs a script (a path relative to this folder, or a file URL) in a child process; resolves with
 * the URL its output names.
 */
export async function spawnChild(
  name: string | URL,
  childEnv: Record<string, string>,
  pattern: RegExp,
): Promise<Server> {
  const script = fileURLToPath(new URL(name, import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [script], {
    env: { PATH: env['PATH'], HOME: env['HOME'], ...childEnv },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const base = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${name}: no ${pattern} in 120 s: ${out}`)), 120_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = pattern.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${out}`)));
  });
  return {
    base,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Mercato on the bench database (`mercato start`, every module), once it answers. */
export async function startMercato(extraEnv: Record<string, string> = {}): Promise<Server> {
  const server = runMercato(['start'], { ...mercatoEnv(), ...extraEnv });
  const [, base = ''] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/, 120_000);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return {
    base,
    async stop() {
      server.child.kill('SIGTERM');
      await server.exited;
    },
  };
}

/** The floor server (floor-server.ts) as a child process on the bench database. */
export const startFloor = () =>
  spawnChild(
    './floor-server.ts',
    { DATABASE_URL: databaseUrl, BENCH_FLOOR_POOL: env['MERCATO_DB_POOL_SIZE'] ?? '20' },
    /FLOOR (http:\/\/\S+)/,
  );

/** Creates tenant `bench` with the platform admin (seeded by the demo), logs its admin in. */
export async function createBenchTenant(base: string): Promise<{ api: Api; tenantId: string }> {
  const api = apiAt(base);
  api.token = await login(api, 'platform', 'admin@platform.test', PASSWORD);
  const tenant = await api.must<{ id: string }>('POST', '/api/v1/tenants', {
    slug: TENANT,
    name: 'Bench Outfitters',
    adminEmail: ADMIN_EMAIL,
    adminPassword: PASSWORD,
  });
  api.token = await login(api, TENANT, ADMIN_EMAIL, PASSWORD);
  return { api, tenantId: tenant.id };
}

/**
 * Waits until the WAL holds no message still to deliver (the events of the import reach their
 * subscribers in the background; figures are taken on a quiet server). Returns the seconds waited.
 */
export async function waitForQuiet(label: string, timeoutSeconds = 600): Promise<number> {
  const started = performance.now();
  let lastLog = 0;
  for (;;) {
    const [row] = await sql<{ n: string }>(
      `select count(*) as n from wal.messages
       where state in ('pending', 'delivering', 'retrying') or (state = 'scheduled' and due_at <= now())`,
    );
    const pending = Number(row!.n);
    const waited = (performance.now() - started) / 1000;
    if (pending === 0 || env['MERCATO_WAL_DELIVERY'] === 'false') return waited;
    if (waited > timeoutSeconds) throw new Error(`${label}: ${pending} messages still undelivered`);
    if (waited - lastLog >= 5) {
      lastLog = waited;
      console.log(`${label}: ${pending} events still to deliver`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * waitForQuiet, then ANALYZE. This PostgreSQL runs with autovacuum off: tables that were empty at
 * the last analyze (orders, sagas, reservations, the WAL) would keep every connection on plans made
 * for empty tables, such as a sequential scan per foreign-key check. Autovacuum would have
 * analyzed them once a part had added its rows; the benches do it before each measured part.
 */
export async function quietAndAnalyze(label: string): Promise<void> {
  await waitForQuiet(label);
  await sql('analyze');
}
