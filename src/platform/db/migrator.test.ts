import { copyFile, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { testDatabaseKind, testServerUrl } from '../testing/test-databases.ts';
import { createPglite, type Database, migrate, openPglite, openPostgres } from './index.ts';
import {
  MIGRATIONS_DIR,
  type MigrationResult,
  NO_TRANSACTION_MARKER,
  STATEMENT_SEPARATOR,
} from './migrator.ts';

const kind = testDatabaseKind();
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function admin(text: string) {
  const client = new pg.Client({ connectionString: testServerUrl() });
  await client.connect();
  await client.query(text);
  await client.end();
}

/** An empty database (not cloned from the migrated template). */
async function emptyDatabase(): Promise<() => Database> {
  if (kind === 'pglite') {
    const pglite = await createPglite('memory://');
    const db = openPglite(pglite);
    cleanups.push(() => db.close());
    return () => db;
  }
  const name = `mercato_migrate_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await admin(`create database ${name}`);
  const dbs: Database[] = [];
  cleanups.push(async () => {
    for (const db of dbs) await db.close();
    await admin(`drop database if exists ${name} with (force)`);
  });
  return () => {
    const db = openPostgres(testServerUrl(name), 2);
    dbs.push(db);
    return db;
  };
}

async function migrationsDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mercato-migrations-'));
  for (const [name, body] of Object.entries(files)) await writeFile(join(dir, name), body);
  return dir;
}

describe(`migrations on ${kind}`, () => {
  it('applies every migration once and records each in the ledger', async () => {
    const open = await emptyDatabase();
    const db = open();
    const first = await migrate(db);
    expect(first.error).toBeUndefined();
    expect(first.applied[0]).toBe('0001_platform.sql');
    const second = await migrate(db);
    expect(second).toEqual({ applied: [] });
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from platform.migrations`.execute(
      db.kysely,
    );
    expect(rows[0]!.n).toBe(first.applied.length);
  });

  it('lets two processes migrate at once without applying anything twice', async () => {
    const open = await emptyDatabase();
    const [a, b] = await Promise.all([migrate(open()), migrate(open())]);
    expect(a.error).toBeUndefined();
    expect(b.error).toBeUndefined();
    expect([...a.applied, ...b.applied].sort()).toEqual([...new Set([...a.applied, ...b.applied])].sort());
  });

  it('rolls back a failing migration whole and reports which file failed', async () => {
    const open = await emptyDatabase();
    const db = open();
    const dir = await migrationsDir({
      '0001_good.sql': 'create table public.kept (id int);',
      '0002_bad.sql': 'create table public.half (id int); select no_such_function();',
    });
    const result = await migrate(db, dir);
    expect(result.applied).toEqual(['0001_good.sql']);
    expect(result.error?.message).toMatch(/migration 0002_bad.sql failed/);
    const { rows } = await sql<{ t: string | null }>`select to_regclass('public.half')::text as t`.execute(
      db.kysely,
    );
    expect(rows[0]!.t).toBeNull();
    const ledger = await sql<{ version: number }>`select version from platform.migrations`.execute(db.kysely);
    expect(ledger.rows.map((r) => r.version)).toEqual([1]);
  });

  it('brings data written before a migration to its form: 0041 gives search documents their category lexemes', async () => {
    const open = await emptyDatabase();
    const db = open();
    const before = await mkdtemp(join(tmpdir(), 'mercato-migrations-'));
    for (const file of await readdir(MIGRATIONS_DIR))
      if (file < '0041') await copyFile(join(MIGRATIONS_DIR, file), join(before, file));
    expect((await migrate(db, before)).error).toBeUndefined();
    const tenant = '01a241c6-2573-7cc5-a939-95b05b9bb079';
    const [root, leaf] = ['01a241c6-25d1-7559-ba23-0d8b86576d66', '01a241c6-25e0-7094-a7a9-e509972100b5'];
    await sql`insert into identity.tenants (id, slug, name) values (${tenant}, 'upgraded', 'Upgraded')`.execute(
      db.kysely,
    );
    await sql`insert into catalog.search_documents (tenant_id, product_id, status, handle, title, document,
        heading, category_ids, summary, created_at)
      select ${tenant}, p.id, 'active', p.handle, 'Wool Sweater', to_tsvector('english', 'wool sweater'),
        to_tsvector('english', 'wool sweater'), p.cats, '{}', now()
      from (values ('01a241c6-0000-7000-8000-000000000001'::uuid, 'in-both', array[${root}, ${leaf}]::uuid[]),
        ('01a241c6-0000-7000-8000-000000000002'::uuid, 'in-none', '{}'::uuid[])) as p (id, handle, cats)`.execute(
      db.kysely,
    );
    const upgrade = await migrate(db);
    expect(upgrade.error).toBeUndefined();
    expect(upgrade.applied[0]).toBe('0041_search_category_lexemes.sql');
    const { rows } = await sql<{
      handle: string;
      root: boolean;
      leaf: boolean;
      words: boolean;
    }>`select handle,
        heading @@ (to_tsquery('english', 'sweater') && catalog.category_query(${[root]}::uuid[])) as root,
        document @@ (to_tsquery('english', 'sweater') && catalog.category_query(${[leaf]}::uuid[])) as leaf,
        document @@ to_tsquery('english', 'wool & sweater') as words
      from catalog.search_documents order by handle`.execute(db.kysely);
    expect(rows).toEqual([
      { handle: 'in-both', root: true, leaf: true, words: true },
      { handle: 'in-none', root: false, leaf: false, words: true },
    ]);
  });

  const table = `create table public.captures (id int, grp int);
    insert into public.captures select i, i % 7 from generate_series(1, 1000) as i;`;
  const valid = async (db: Database, index: string) =>
    (
      await sql<{ v: boolean }>`select i.indisvalid as v from pg_index i
        where i.indexrelid = to_regclass(${`public.${index}`})`.execute(db.kysely)
    ).rows.map((r) => r.v);
  const ledger = async (db: Database) =>
    (
      await sql<{ version: number }>`select version from platform.migrations order by 1`.execute(db.kysely)
    ).rows.map((r) => r.version);

  it('applies a no-transaction migration (a concurrent index build) once, in order, and records it', async () => {
    const db = (await emptyDatabase())();
    const dir = await migrationsDir({
      '0001_captures.sql': table,
      '0002_captures_grp.sql': `${NO_TRANSACTION_MARKER}
drop index concurrently if exists public.captures_grp;
${STATEMENT_SEPARATOR}
-- the build itself
create index concurrently captures_grp on public.captures (grp);
`,
      '0003_after.sql': 'create table public.after (id int);',
    });
    const first = await migrate(db, dir);
    expect(first).toEqual({ applied: ['0001_captures.sql', '0002_captures_grp.sql', '0003_after.sql'] });
    expect(await valid(db, 'captures_grp')).toEqual([true]);
    expect(await ledger(db)).toEqual([1, 2, 3]);
    expect(await migrate(db, dir)).toEqual({ applied: [] });
  });

  it('leaves a no-transaction migration unrecorded when a statement fails midway, and a rerun completes it', async () => {
    const db = (await emptyDatabase())();
    const dir = await migrationsDir({
      '0001_captures.sql': `${table} insert into public.captures values (1, 100);`,
      '0002_captures_unique.sql': `${NO_TRANSACTION_MARKER}
drop index concurrently if exists public.captures_id;
${STATEMENT_SEPARATOR}
create unique index concurrently captures_id on public.captures (id);`,
    });
    const failed = await migrate(db, dir);
    expect(failed.applied).toEqual(['0001_captures.sql']);
    expect(failed.error?.message).toMatch(/migration 0002_captures_unique.sql failed at statement 2 of 2/);
    expect(await ledger(db)).toEqual([1]);
    // The failed concurrent build leaves an INVALID index behind: the rerun's first statement drops it.
    expect(await valid(db, 'captures_id')).toEqual([false]);
    await sql`delete from public.captures where grp = 100`.execute(db.kysely);
    expect(await migrate(db, dir)).toEqual({ applied: ['0002_captures_unique.sql'] });
    expect(await valid(db, 'captures_id')).toEqual([true]);
    expect(await ledger(db)).toEqual([1, 2]);
  });

  // Five fresh databases, each a new PGlite of several seconds on a loaded machine.
  it('refuses a malformed no-transaction migration, naming the file, before applying anything', {
    timeout: 90_000,
  }, async () => {
    const cases: Array<[string, RegExp]> = [
      [`create table public.x (id int);\n${NO_TRANSACTION_MARKER}`, /must be the file's first line/],
      [`create table public.x (id int);\n${STATEMENT_SEPARATOR}\nselect 1;`, /only separates statements/],
      [
        `${NO_TRANSACTION_MARKER}\nselect 1;\n${STATEMENT_SEPARATOR}\n-- nothing\n`,
        /statement 2 of 2 is empty/,
      ],
      [`-- mercato:no-transactions\nselect 1;`, /unknown directive/],
    ];
    for (const [body, why] of cases) {
      const db = (await emptyDatabase())();
      const result = await migrate(
        db,
        await migrationsDir({ '0001_fine.sql': 'select 1;', '0002_odd.sql': body }),
      );
      expect(result.applied).toEqual([]);
      expect(result.error?.message).toMatch(/migration 0002_odd.sql is malformed/);
      expect(result.error?.message).toMatch(why);
    }
    // More than one statement between separators: PostgreSQL refuses the text before running any of it.
    const db = (await emptyDatabase())();
    const two = `${NO_TRANSACTION_MARKER}\ncreate table public.a (id int); create table public.b (id int);`;
    const result = await migrate(db, await migrationsDir({ '0001_two.sql': two }));
    expect(result.error?.message).toMatch(
      /migration 0001_two.sql failed at statement 1 of 1: cannot insert multiple/,
    );
    const { rows } = await sql<{ t: string | null }>`select to_regclass('public.a')::text as t`.execute(
      db.kysely,
    );
    expect(rows[0]!.t).toBeNull();
  });

  /**
   * Runs a no-transaction migration whose concurrent index build waits, row by row, on an
   * advisory lock the test holds; `meanwhile` runs while the build is certainly under way.
   */
  async function duringConcurrentBuild(
    migrators: number,
    meanwhile: (url: string) => Promise<void>,
  ): Promise<{ results: MigrationResult[]; db: Database }> {
    const open = await emptyDatabase();
    const db = open();
    const dir = await migrationsDir({
      '0001_captures.sql': `${table}
        create function public.gated(int) returns int immutable language plpgsql as $$
        begin perform pg_advisory_lock_shared(424242); perform pg_advisory_unlock_shared(424242); return $1; end $$;`,
      '0002_captures_gated.sql': `${NO_TRANSACTION_MARKER}
create index concurrently if not exists captures_gated on public.captures (public.gated(id));`,
    });
    const { rows } = await sql<{ name: string }>`select current_database() as name`.execute(db.kysely);
    const client = new pg.Client({ connectionString: testServerUrl(rows[0]!.name) });
    await client.connect();
    try {
      await client.query('select pg_advisory_lock(424242)');
      const running = Promise.all(
        [db, ...Array.from({ length: migrators - 1 }, open)].map((d) => migrate(d, dir)),
      );
      const building = `select count(*)::int as n from pg_stat_activity where datname = current_database()
        and wait_event = 'advisory' and query like 'create index concurrently%'`;
      const deadline = Date.now() + 10_000;
      while ((await client.query<{ n: number }>(building)).rows[0]!.n === 0) {
        const done = await Promise.race([running.then((r) => r), setTimeout(50, null)]);
        if (done || Date.now() > deadline)
          throw new Error(
            `the index build never started: ${JSON.stringify(done?.map((r) => r.error?.message))}`,
          );
      }
      await meanwhile(testServerUrl(rows[0]!.name));
      await client.query('select pg_advisory_unlock(424242)');
      return { results: await running, db };
    } finally {
      await client.end();
    }
  }

  it.runIf(kind === 'postgres')(
    'builds a no-transaction index concurrently: a writer to the table is not blocked meanwhile',
    async () => {
      const { results, db } = await duringConcurrentBuild(1, async (url) => {
        const writer = new pg.Client({ connectionString: url });
        await writer.connect();
        try {
          // A build inside a transaction (or without CONCURRENTLY) holds a SHARE lock until it ends.
          await writer.query("set lock_timeout = '3s'");
          await writer.query('insert into public.captures values (1001, 1)');
        } finally {
          await writer.end();
        }
      });
      expect(results).toEqual([{ applied: ['0001_captures.sql', '0002_captures_gated.sql'] }]);
      expect(await valid(db, 'captures_gated')).toEqual([true]);
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from public.captures`.execute(
        db.kysely,
      );
      expect(rows[0]!.n).toBe(1001);
    },
  );

  it.runIf(kind === 'postgres')(
    'lets a second migrator wait for the lock while the first builds an index concurrently',
    async () => {
      const { results, db } = await duringConcurrentBuild(2, async (url) => {
        // Both are on the lock: one builds, the other waits for it.
        const waiting = `select count(*)::int as n from pg_stat_activity where datname = current_database()
          and pid <> pg_backend_pid() and query like '%advisory_lock(7370912026)%'`;
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          while ((await client.query<{ n: number }>(waiting)).rows[0]!.n === 0) await setTimeout(50);
          await setTimeout(200);
        } finally {
          await client.end();
        }
      });
      for (const r of results) expect(r.error).toBeUndefined();
      expect(results.flatMap((r) => r.applied).sort()).toEqual([
        '0001_captures.sql',
        '0002_captures_gated.sql',
      ]);
      expect(await valid(db, 'captures_gated')).toEqual([true]);
    },
  );

  it('refuses a file that is not named NNNN_name.sql', async () => {
    const open = await emptyDatabase();
    const dir = await migrationsDir({ 'create-users.sql': 'select 1;' });
    const result = await migrate(open(), dir);
    expect(result.error?.message).toMatch(/must be named NNNN_name.sql/);
  });
});
