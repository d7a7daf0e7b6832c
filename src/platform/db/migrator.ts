import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Database } from './database.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations/', import.meta.url));
// Any constant works; it only has to be the same in every process that migrates this database.
const ADVISORY_LOCK_KEY = 7_370_912_026;

export type MigrationResult = { applied: string[]; error?: Error };

type MigrationFile = { version: number; name: string; file: string };

async function listMigrations(dir: string): Promise<MigrationFile[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  return files.map((file) => {
    const match = /^(\d{4})_([a-z0-9_-]+)\.sql$/.exec(file);
    if (!match) throw new Error(`migration file "${file}" must be named NNNN_name.sql`);
    return { version: Number(match[1]), name: match[2]!, file };
  });
}

/**
 * Applies every pending migration in order, each in its own transaction, under a session
 * advisory lock so concurrent starts apply each file once. Forward-only; never throws: the
 * result carries what was applied and the error that stopped it, if any.
 */
export async function migrate(db: Database, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  const applied: string[] = [];
  try {
    const migrations = await listMigrations(dir);
    await db.withScriptRunner(async (runner) => {
      // Migrations may rewrite big tables and wait for another migrator's lock: no statement
      // timeout on this session while they run (reset to the pool's before it goes back).
      await runner.exec('set statement_timeout = 0; set idle_in_transaction_session_timeout = 0');
      await runner.exec(`select pg_advisory_lock(${ADVISORY_LOCK_KEY})`);
      try {
        await runner.exec(`create schema if not exists platform;
          create table if not exists platform.migrations (
            version integer primary key,
            name text not null,
            applied_at timestamptz not null default now()
          )`);
        const done = new Set(
          (await runner.query<{ version: number }>('select version from platform.migrations')).map(
            (r) => r.version,
          ),
        );
        for (const m of migrations) {
          if (done.has(m.version)) continue;
          const body = await readFile(`${dir}/${m.file}`, 'utf8');
          await runner.exec('begin');
          try {
            // The ledger row goes first: a second migrator that slipped past the lock collides here.
            await runner.query('insert into platform.migrations (version, name) values ($1, $2)', [
              m.version,
              m.name,
            ]);
            await runner.exec(body);
            await runner.exec('commit');
          } catch (error) {
            await runner.exec('rollback');
            throw new Error(`migration ${m.file} failed: ${(error as Error).message}`, { cause: error });
          }
          applied.push(m.file);
        }
      } finally {
        await runner.exec(`select pg_advisory_unlock(${ADVISORY_LOCK_KEY})`);
        await runner.exec('reset statement_timeout; reset idle_in_transaction_session_timeout');
      }
    });
    return { applied };
  } catch (error) {
    return { applied, error: error as Error };
  }
}
