import { copyFile, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { testDatabaseKind, testServerUrl } from '../testing/test-databases.ts';
import { createPglite, type Database, migrate, openPglite, openPostgres } from './index.ts';
import { MIGRATIONS_DIR } from './migrator.ts';

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

  it('refuses a file that is not named NNNN_name.sql', async () => {
    const open = await emptyDatabase();
    const dir = await migrationsDir({ 'create-users.sql': 'select 1;' });
    const result = await migrate(open(), dir);
    expect(result.error?.message).toMatch(/must be named NNNN_name.sql/);
  });
});
