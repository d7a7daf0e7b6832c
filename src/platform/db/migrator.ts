import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Database, ScriptRunner } from './database.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations/', import.meta.url));
// Any constant works; it only has to be the same in every process that migrates this database.
const ADVISORY_LOCK_KEY = 7_370_912_026;
const LOCK_POLL_MS = 100;

/** First line of a migration whose statements run one by one, outside any transaction. */
export const NO_TRANSACTION_MARKER = '-- mercato:no-transaction';
/** In a no-transaction migration, the line that separates one statement from the next. */
export const STATEMENT_SEPARATOR = '-- mercato:split';

export type MigrationResult = { applied: string[]; error?: Error };

type MigrationFile = { version: number; name: string; file: string };
type MigrationPlan = { transaction: true; body: string } | { transaction: false; statements: string[] };

async function listMigrations(dir: string): Promise<MigrationFile[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  return files.map((file) => {
    const match = /^(\d{4})_([a-z0-9_-]+)\.sql$/.exec(file);
    if (!match) throw new Error(`migration file "${file}" must be named NNNN_name.sql`);
    return { version: Number(match[1]), name: match[2]!, file };
  });
}

/**
 * Reads a migration's directives: `-- mercato:no-transaction` on its first line makes it a
 * list of statements separated by `-- mercato:split` lines, each run on its own. Any other
 * `-- mercato:` line, or one out of place, refuses the file (a typo must not silently run a
 * file in a transaction, or the other way round). Whether each part holds exactly one
 * statement is left to PostgreSQL, which refuses more than one before running any of it.
 */
export function planMigration(file: string, body: string): MigrationPlan {
  const lines = body.split(/\r?\n/);
  const transaction = lines[0]?.trim() !== NO_TRANSACTION_MARKER;
  const parts: string[][] = [[]];
  for (const [i, line] of lines.entries()) {
    const directive = line.trim();
    if (!/^--\s*mercato\s*:/i.test(directive)) {
      parts.at(-1)!.push(line);
      continue;
    }
    if (i === 0 && !transaction) continue;
    if (directive === STATEMENT_SEPARATOR && !transaction) {
      parts.push([]);
      continue;
    }
    const why =
      directive === NO_TRANSACTION_MARKER
        ? `"${NO_TRANSACTION_MARKER}" must be the file's first line`
        : directive === STATEMENT_SEPARATOR
          ? `"${STATEMENT_SEPARATOR}" only separates statements of a "${NO_TRANSACTION_MARKER}" file`
          : `unknown directive "${directive}"`;
    throw new Error(`migration ${file} is malformed (line ${i + 1}): ${why}`);
  }
  if (transaction) return { transaction, body };
  const statements = parts.map((p) => p.join('\n').trim());
  for (const [i, statement] of statements.entries()) {
    const code = statement
      .split('\n')
      .filter((l) => !l.trim().startsWith('--'))
      .join('')
      .trim();
    if (code === '' || code === ';')
      throw new Error(`migration ${file} is malformed: statement ${i + 1} of ${statements.length} is empty`);
  }
  return { transaction, statements };
}

/**
 * Waits for the migration lock by polling: a session blocked in pg_advisory_lock holds a
 * snapshot all the while, and CREATE INDEX CONCURRENTLY run by the lock's holder waits for
 * every older snapshot, so the two would deadlock. Between attempts this session holds none.
 */
async function lockMigrations(runner: ScriptRunner): Promise<void> {
  for (;;) {
    const [row] = await runner.query<{ locked: boolean }>(
      `select pg_try_advisory_lock(${ADVISORY_LOCK_KEY}) as locked`,
    );
    if (row?.locked) return;
    await sleep(LOCK_POLL_MS);
  }
}

async function applyInTransaction(runner: ScriptRunner, m: MigrationFile, body: string): Promise<void> {
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
}

/**
 * Runs each statement on its own, outside any transaction; the ledger row is written only
 * once all succeeded. Nothing rolls back: a failure (or a crash) leaves the statements before
 * it applied and the file pending, so the next run starts it again from its first statement,
 * which is why such statements must be idempotent (see DEVELOPERS.md).
 */
async function applyWithoutTransaction(runner: ScriptRunner, m: MigrationFile, statements: string[]) {
  for (const [i, statement] of statements.entries()) {
    try {
      await runner.statement(statement);
    } catch (error) {
      const where = `statement ${i + 1} of ${statements.length}: ${(error as Error).message}`;
      const next = 'no transaction: the file runs again from its first statement next time';
      throw new Error(`migration ${m.file} failed at ${where} (${next})`, { cause: error });
    }
  }
  await runner.query('insert into platform.migrations (version, name) values ($1, $2)', [m.version, m.name]);
}

/**
 * Applies every pending migration in number order under a session advisory lock, so
 * concurrent starts apply each file once: each in its own transaction, except files marked
 * `-- mercato:no-transaction`, whose statements run one by one outside any. Forward-only;
 * never throws: the result carries what was applied and the error that stopped it, if any.
 */
export async function migrate(db: Database, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  const applied: string[] = [];
  try {
    const migrations = await listMigrations(dir);
    await db.withScriptRunner(async (runner) => {
      // Migrations may rewrite big tables and wait for another migrator's lock: no statement
      // timeout on this session while they run (reset to the pool's before it goes back).
      await runner.exec('set statement_timeout = 0; set idle_in_transaction_session_timeout = 0');
      await lockMigrations(runner);
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
        // Every pending file is read and checked before the first is applied.
        const pending: Array<{ m: MigrationFile; plan: MigrationPlan }> = [];
        for (const m of migrations)
          if (!done.has(m.version))
            pending.push({ m, plan: planMigration(m.file, await readFile(`${dir}/${m.file}`, 'utf8')) });
        for (const { m, plan } of pending) {
          if (plan.transaction) await applyInTransaction(runner, m, plan.body);
          else await applyWithoutTransaction(runner, m, plan.statements);
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
