import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import {
  type MercatoProcess,
  signInDemoAdmin,
  startMercatoServer,
  stopServers,
} from '../../cli/mercato-process.ts';
import { type Database, openPostgres } from '../db/index.ts';
import { cloneTestDatabase } from './test-databases.ts';

/** The demo password every crash test's servers start with (MERCATO_DEMO_PASSWORD). */
export const CRASH_DEMO_PASSWORD = 'demo-password-1234';

type Env = Record<string, string | undefined>;

/** Where a killed server's data outlives it, for the next one started on it. */
export type ServerStorage = {
  /** What a server is started with to use it: MERCATO_DATA_DIR, or DATABASE_URL and one worker. */
  env: Record<string, string>;
  /** The PostgreSQL database's URL and an owner connection (pool of 2) to it; PostgreSQL only. */
  url?: string;
  owner?: Database;
  /** Closes the owner connection and removes the data. */
  drop(): Promise<void>;
};

/** An embedded PGlite data directory of its own, under the temporary directory. */
export async function embeddedDataDir(prefix: string): Promise<ServerStorage> {
  const dataDir = await mkdtemp(join(tmpdir(), prefix));
  return { env: { MERCATO_DATA_DIR: dataDir }, drop: () => rm(dataDir, { recursive: true, force: true }) };
}

/**
 * A clone of the test database on PostgreSQL, served by one worker (the process killed is the
 * one that serves and works), with an owner connection for the test's own reads.
 */
export async function postgresClone(): Promise<ServerStorage> {
  const database = await cloneTestDatabase();
  const url = database.url as string;
  const owner = openPostgres(url, 2);
  return {
    env: { DATABASE_URL: url, MERCATO_WORKERS: '1' },
    url,
    owner,
    async drop() {
      await owner.close();
      await database.drop();
    },
  };
}

export type CrashServers = {
  /** The storage, once beforeAll opened it. */
  storage(): ServerStorage;
  /** The owner connection of a PostgreSQL storage. */
  owner(): Database;
  /** The PostgreSQL storage's URL. */
  databaseUrl(): string;
  /** The whole env a server starts with: the storage's, the demo password, the suite's env, then `extra`. */
  env(extra?: Env): Env;
  /** `mercato start` with env(extra), once it listens; it is stopped in afterAll if still running. */
  start(extra?: Env): Promise<{ server: MercatoProcess; base: string }>;
  /** kill -9: sends SIGKILL and resolves with how the process exited. */
  kill9(server: MercatoProcess): Promise<number | string | null>;
  /** Sends SIGTERM (a drain) and resolves with how the process exited: 0 when it stopped cleanly. */
  stop(server: MercatoProcess): Promise<number | string | null>;
  /** The demo admin's access token on a started server. */
  adminToken(base: string): Promise<string>;
  /** The demo admin's authorization header on a started server. */
  adminHeaders(base: string): Promise<{ authorization: string }>;
};

/**
 * The harness of a kill -9 test: registers a beforeAll that opens the storage (embeddedDataDir,
 * postgresClone) and an afterAll that stops (SIGTERM) every server still running, runs
 * afterServersStopped (the owner connection still open), then drops the storage. Every server of
 * the suite runs on that one storage, so a restart finds what the killed one left.
 */
export function crashServers(options: {
  storage: () => Promise<ServerStorage>;
  env?: Env;
  afterServersStopped?: (storage: ServerStorage) => Promise<void>;
}): CrashServers {
  let storage: ServerStorage | undefined;
  const servers: MercatoProcess[] = [];
  beforeAll(async () => {
    storage = await options.storage();
  });
  afterAll(async () => {
    await stopServers(servers);
    if (!storage) return;
    try {
      await options.afterServersStopped?.(storage);
    } finally {
      await storage.drop();
    }
  });
  const opened = () => {
    if (!storage) throw new Error('the crash storage is opened in beforeAll');
    return storage;
  };
  const harness: CrashServers = {
    storage: opened,
    owner: () => opened().owner ?? fail('an owner connection needs a PostgreSQL storage'),
    databaseUrl: () => opened().url ?? fail('a database URL needs a PostgreSQL storage'),
    env: (extra = {}) => ({
      ...opened().env,
      MERCATO_DEMO_PASSWORD: CRASH_DEMO_PASSWORD,
      ...options.env,
      ...extra,
    }),
    async start(extra) {
      const started = await startMercatoServer(harness.env(extra));
      servers.push(started.server);
      return started;
    },
    kill9(server) {
      server.child.kill('SIGKILL');
      return server.exited;
    },
    stop(server) {
      server.child.kill('SIGTERM');
      return server.exited;
    },
    adminToken: (base) => signInDemoAdmin(base, CRASH_DEMO_PASSWORD),
    async adminHeaders(base) {
      return { authorization: `Bearer ${await harness.adminToken(base)}` };
    },
  };
  return harness;
}

function fail(message: string): never {
  throw new Error(message);
}
