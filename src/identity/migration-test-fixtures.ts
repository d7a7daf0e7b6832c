import { copyFile, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { expect } from 'vitest';
import {
  createPglite,
  type Database,
  MIGRATIONS_DIR,
  migrate,
  openPglite,
  openPostgres,
} from '../platform/db/index.ts';
import { testDatabaseKind, testServerUrl } from '../platform/testing/test-databases.ts';

/**
 * Databases for a test of one migration's rewrite of stored rows, on the test project's kind
 * (an in-memory PGlite, or a fresh PostgreSQL database named after `label`). `cleanup` closes
 * (and drops) every one made; call it in afterAll.
 */
export function migrationFixture(label: string) {
  const cleanups: Array<() => Promise<void>> = [];

  /** An empty database migrated with the files before `from`; `next()` runs the files up to `to`. */
  async function databaseBefore(from: string, to: string) {
    let db: Database;
    if (testDatabaseKind() === 'pglite') {
      db = openPglite(await createPglite('memory://'));
      cleanups.push(() => db.close());
    } else {
      const name = `mercato_${label}_migrate_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
      const admin = async (text: string) => {
        const client = new pg.Client({ connectionString: testServerUrl() });
        await client.connect();
        await client.query(text);
        await client.end();
      };
      await admin(`create database ${name}`);
      db = openPostgres(testServerUrl(name), 2);
      cleanups.push(async () => {
        await db.close();
        await admin(`drop database if exists ${name} with (force)`);
      });
    }
    const files = await readdir(MIGRATIONS_DIR);
    const dirOf = async (upTo: string) => {
      const dir = await mkdtemp(join(tmpdir(), 'mercato-migrations-'));
      for (const file of files) if (file < upTo) await copyFile(join(MIGRATIONS_DIR, file), join(dir, file));
      return dir;
    };
    expect((await migrate(db, await dirOf(from))).error).toBeUndefined();
    return { db, next: async () => migrate(db, await dirOf(to)) };
  }

  const cleanup = async () => {
    for (const done of cleanups.reverse()) await done();
  };
  return { databaseBefore, cleanup };
}
