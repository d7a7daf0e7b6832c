import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import pg from 'pg';
import { inject } from 'vitest';
import {
  createPglite,
  type Database,
  migrate,
  openPglite,
  openPostgres,
  requestRoleName,
} from '../db/index.ts';

/** Which database the current Vitest project runs against: set per project in vitest.config.ts. */
export type TestDatabaseKind = 'pglite' | 'postgres';

export function testDatabaseKind(): TestDatabaseKind {
  return process.env['MERCATO_TEST_DB'] === 'postgres' ? 'postgres' : 'pglite';
}

/** Admin connection for creating test databases; MERCATO_TEST_DATABASE_URL overrides the local default. */
export function testServerUrl(database = 'postgres'): string {
  const url = new URL(
    process.env['MERCATO_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  );
  url.pathname = `/${database}`;
  return url.toString();
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: testServerUrl() });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/**
 * Global setup: migrates one template per run (a PGlite dump file, or a PostgreSQL template
 * database) and returns a teardown. Every test file then clones it in a fraction of a second.
 */
export async function prepareTemplate(
  kind: TestDatabaseKind,
  dumpPath: string,
): Promise<{ template: string; teardown: () => Promise<void> }> {
  if (kind === 'pglite') {
    const pglite = await createPglite('memory://');
    const db = openPglite(pglite);
    const result = await migrate(db);
    if (result.error) throw result.error;
    const dump = await pglite.dumpDataDir('none');
    await writeFile(dumpPath, Buffer.from(await dump.arrayBuffer()));
    await db.close();
    return { template: dumpPath, teardown: async () => {} };
  }
  const template = `mercato_template_${process.pid}`;
  await adminQuery(`drop database if exists ${template}`);
  await adminQuery(`create database ${template}`);
  const db = openPostgres(testServerUrl(template), 2);
  const result = await migrate(db);
  await db.close();
  if (result.error) throw result.error;
  return {
    template,
    teardown: async () => {
      await adminQuery(`drop database if exists ${template} with (force)`);
    },
  };
}

/** A fresh, migrated database of its own for one test file; drop() removes it. */
export async function cloneTestDatabase(): Promise<{
  db: Database;
  url: string | undefined;
  drop(): Promise<void>;
}> {
  if (testDatabaseKind() === 'pglite') {
    const pglite = await createPglite('memory://', new Blob([await readFile(inject('mercatoTemplate'))]));
    const db = openPglite(pglite);
    return { db, url: undefined, drop: () => db.close() };
  }
  const template = inject('mercatoTemplate');
  const name = `mercato_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(`create database ${name} template ${template}`);
  const url = testServerUrl(name);
  const db = openPostgres(url, 10);
  await db.enableRequestRole();
  return {
    db,
    url,
    async drop() {
      await db.close();
      await adminQuery(`drop database if exists ${name} with (force)`);
      await adminQuery(`drop role if exists ${requestRoleName(name)}`);
    },
  };
}

export type ShortTimeoutDatabase = { db: Database; url: string; close(): Promise<void> };

/**
 * A fresh PostgreSQL database whose sessions (owner and request role) run under a short
 * statement timeout, for tests of what the timeout cancels. PGlite cannot cancel a statement,
 * so this is PostgreSQL only. close() closes the pool and drops the database.
 */
export async function openShortTimeoutDatabase(statementTimeoutMs: number): Promise<ShortTimeoutDatabase> {
  const database = await cloneTestDatabase();
  if (!database.url) {
    await database.drop();
    throw new Error('statement timeouts need PostgreSQL: PGlite cannot cancel a statement');
  }
  const db = openPostgres(database.url, 2, { statementTimeoutMs });
  await db.enableRequestRole();
  return {
    db,
    url: database.url,
    async close() {
      await db.close();
      await database.drop();
    },
  };
}
