import { copyFile, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createPglite,
  type Database,
  MIGRATIONS_DIR,
  migrate,
  openPglite,
  openPostgres,
  withTenant,
} from '../platform/db/index.ts';
import { testDatabaseKind, testServerUrl } from '../platform/testing/test-databases.ts';
import { isUuid } from '../platform/uuidv7.ts';
import { RESERVED_PRODUCT_HANDLES } from './products/product-rules.ts';
import { freeHandle } from './products/product-write.ts';
import type { CatalogTrx } from './tables.ts';

const kind = testDatabaseKind();
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** An empty database (not the migrated template), migrated up to (not including) `upTo`. */
async function databaseBefore(upTo: string): Promise<Database> {
  let db: Database;
  if (kind === 'pglite') {
    db = openPglite(await createPglite('memory://'));
    cleanups.push(() => db.close());
  } else {
    const name = `mercato_catalog_migrate_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
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
  const dir = await mkdtemp(join(tmpdir(), 'mercato-migrations-'));
  for (const file of await readdir(MIGRATIONS_DIR))
    if (file < upTo) await copyFile(join(MIGRATIONS_DIR, file), join(dir, file));
  expect((await migrate(db, dir)).error).toBeUndefined();
  return db;
}

const A = '01a241c6-2573-7cc5-a939-95b05b9bb079';
const B = '01a241c6-2573-7cc5-a939-95b05b9bb07a';
const ID_SHAPED = '0190d4c5-7f8b-7c3e-9a4b-123456789abc';
const product = (n: number) => `01a241c6-0000-7000-8000-00000000000${n}`;
const [KNITWEAR, OLD_CATEGORY] = [
  '01a241c6-25d1-7559-ba23-0d8b86576d66',
  '01a241c6-25e0-7094-a7a9-e509972100b5',
];

type Row = { tenant_id: string; handle: string; version: number };

describe(`catalog migrations on ${kind}`, () => {
  it('0044 renames handles no path can read, as the create path would name them, per tenant', async () => {
    const db = await databaseBefore('0044');
    await sql`insert into identity.tenants (id, slug, name) values (${A}, 'old-a', 'A'), (${B}, 'old-b', 'B')`.execute(
      db.kysely,
    );
    // Rows written before handles were checked: an id-shaped handle whose "-2" is taken, `suggest`
    // in two tenants, and an id-shaped category shown in a search document's breadcrumbs.
    await sql`insert into catalog.products (id, tenant_id, handle, title, version)
      values (${product(1)}, ${A}, ${ID_SHAPED}, 'Old', 3), (${product(2)}, ${A}, ${`${ID_SHAPED}-2`}, 'Two', 1),
        (${product(3)}, ${A}, 'suggest', 'Suggest', 1), (${product(4)}, ${A}, 'suggest-2', 'S2', 1),
        (${product(5)}, ${A}, 'wool-sweater', 'Wool', 1), (${product(6)}, ${B}, 'suggest', 'Suggest', 1)`.execute(
      db.kysely,
    );
    await sql`insert into catalog.categories (id, tenant_id, name, handle)
      values (${KNITWEAR}, ${A}, 'Knitwear', 'knitwear'), (${OLD_CATEGORY}, ${A}, 'Old', ${ID_SHAPED})`.execute(
      db.kysely,
    );
    const summary = (handle: string) =>
      JSON.stringify({
        id: product(1),
        handle,
        updatedAt: '2020-01-01T00:00:00.000Z',
        categories: [
          { id: KNITWEAR, handle: 'knitwear', name: 'Knitwear' },
          { id: OLD_CATEGORY, handle: ID_SHAPED, name: 'Old' },
        ],
      });
    await sql`insert into catalog.search_documents (tenant_id, product_id, status, handle, title, document,
        heading, summary, created_at)
      values (${A}, ${product(1)}, 'active', ${ID_SHAPED}, 'Old', ''::tsvector, ''::tsvector, ${summary(ID_SHAPED)}::jsonb, now()),
        (${A}, ${product(5)}, 'active', 'wool-sweater', 'Wool', ''::tsvector, ''::tsvector, ${summary('wool-sweater')}::jsonb, now())`.execute(
      db.kysely,
    );
    // What the create path picks for these slugs, asked before the migration runs.
    const pick = (tenant: string, table: 'catalog.products' | 'catalog.categories', text: string) =>
      withTenant(db.kysely, tenant, (trx) =>
        freeHandle(trx as unknown as CatalogTrx, table, tenant, text, 'x'),
      );
    const expected = {
      idShaped: await pick(A, 'catalog.products', ID_SHAPED),
      suggestA: await pick(A, 'catalog.products', 'suggest'),
      suggestB: await pick(B, 'catalog.products', 'suggest'),
      category: await pick(A, 'catalog.categories', ID_SHAPED),
    };
    expect(expected).toEqual({
      idShaped: `${ID_SHAPED}-3`,
      suggestA: 'suggest-3',
      suggestB: 'suggest-2',
      category: `${ID_SHAPED}-2`,
    });

    const upgrade = await migrate(db);
    expect(upgrade.error).toBeUndefined();
    expect(upgrade.applied[0]).toBe('0044_catalog_readable_handles.sql');

    const products = await sql<Row & { id: string }>`select id, tenant_id, handle, version
      from catalog.products order by id`.execute(db.kysely);
    expect(products.rows.map((r) => [r.handle, r.version])).toEqual([
      [expected.idShaped, 4],
      [`${ID_SHAPED}-2`, 1],
      [expected.suggestA, 2],
      ['suggest-2', 1],
      ['wool-sweater', 1],
      [expected.suggestB, 2],
    ]);
    for (const r of products.rows)
      expect(isUuid(r.handle) || RESERVED_PRODUCT_HANDLES.has(r.handle)).toBe(false);
    const categories = await sql<{
      handle: string;
    }>`select handle from catalog.categories order by id`.execute(db.kysely);
    expect(categories.rows.map((r) => r.handle)).toEqual(['knitwear', expected.category]);

    const docs = await sql<{ handle: string; summary: Record<string, unknown> }>`select handle, summary
      from catalog.search_documents order by product_id`.execute(db.kysely);
    const [renamed, untouched] = docs.rows;
    expect(renamed!.handle).toBe(expected.idShaped);
    expect(renamed!.summary.handle).toBe(expected.idShaped);
    expect(renamed!.summary.updatedAt).not.toBe('2020-01-01T00:00:00.000Z');
    expect(renamed!.summary.categories).toEqual([
      { id: KNITWEAR, handle: 'knitwear', name: 'Knitwear' },
      { id: OLD_CATEGORY, handle: expected.category, name: 'Old' },
    ]);
    expect(untouched!.handle).toBe('wool-sweater');
    expect(untouched!.summary.handle).toBe('wool-sweater');
    expect(untouched!.summary.updatedAt).toBe('2020-01-01T00:00:00.000Z');
    expect((untouched!.summary.categories as { handle: string }[])[1]!.handle).toBe(expected.category);
    const stamps = await sql<{ same: boolean }>`select to_char(p.updated_at at time zone 'UTC',
        'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') = d.summary->>'updatedAt' as same
      from catalog.products p join catalog.search_documents d on d.product_id = p.id
      where p.id = ${product(1)}`.execute(db.kysely);
    expect(stamps.rows).toEqual([{ same: true }]);
  });
});
