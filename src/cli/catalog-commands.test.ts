import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CatalogTestApp,
  createShop,
  makeDocumentPreNfkc,
  productEvents,
  type Shop,
  send,
  startCatalogApp,
  until,
} from '../catalog/catalog-test-fixtures.ts';
import type { Product } from '../catalog/index.ts';
import { withTenant } from '../platform/db/index.ts';
import { testDatabaseKind } from '../platform/testing/test-databases.ts';
import { mercato, runMercato } from './mercato-process.ts';

const kind = testDatabaseKind();

const JSONL = [
  JSON.stringify({
    handle: 'cli-kettle',
    title: 'Stovetop Kettle',
    status: 'active',
    variants: [{ sku: 'KETTLE-1', prices: { USD: 3900 } }],
  }),
  '',
  '{nope',
  JSON.stringify({
    handle: 'cli-bad',
    title: 'Bad',
    status: 'live',
    variants: [{ sku: 'BAD-1', prices: { USD: -1 } }],
  }),
  JSON.stringify({
    handle: 'cli-pan',
    title: 'Cast Iron Pan',
    status: 'active',
    variants: [{ sku: 'PAN-1', prices: { USD: 5900 } }],
  }),
  JSON.stringify({ handle: 'cli-copy', title: 'Copy', variants: [{ sku: 'KETTLE-1', prices: { USD: 1 } }] }),
].join('\n');

const CSV = [
  'handle,title,description,status,tags,categories,sku,option.size,price.USD,price.EUR,weight_grams,image_url,image_alt,attr.material,colour_typo',
  'cli-tee,Cotton Tee,"Soft, ""heavy"" cotton",active,"summer, basics",,TEE-S,S,1500,1400,180,https://cdn.example.com/tee.jpg,Tee,cotton,',
  'cli-tee,,,,,,TEE-M,M,1500,1400,190,,,,',
  'cli-mug,Mug,,active,,,MUG-1,,abc,,,,,,',
  'cli-cap,Cap,,active,,no-such-category,CAP-1,,900,,,https://cdn.example.com/cap.jpg,,,',
  'cli-scarf,Scarf,"Two',
  'lines",active,,,SCARF-1,S,2000,,,,,wool,',
  'cli-scarf,,,,,,SCARF-2,M,-3,,,,,,',
  'too,few,fields',
].join('\r\n');

/** Runs the import and returns its exit code, stdout and stderr. */
type Runner = (file: string) => Promise<{ code: number | string | null; output: string; errors: string }>;

function checkReports(run: Runner, dir: () => string) {
  it('imports JSON Lines, reporting every bad line with its field, and carries on past them', async () => {
    const file = join(dir(), 'products.jsonl');
    await writeFile(file, JSONL);
    const result = await run(file);
    expect(result.code).toBe(1);
    const stdout = result.output.replace(result.errors, '');
    expect(stdout).toContain('line 3: /: not JSON');
    expect(stdout).toContain('line 4: /status:');
    expect(stdout).toContain('line 4: /variants/0/prices/USD:');
    expect(stdout).toContain('line 6: /variants/0/sku: is taken by another variant');
    expect(stdout).toContain('4 products read: 2 created, 0 updated, 0 unchanged, 2 refused');
    expect(result.errors).toMatch(/\[#+\] 100% 4\/4 products, 2 failed/);
  }, 120_000);

  it('imports CSV, one row per variant grouped by handle, reporting each bad row at its line and column', async () => {
    const file = join(dir(), 'products.csv');
    await writeFile(file, CSV);
    const result = await run(file);
    expect(result.code).toBe(1);
    const lines = result.output.split('\n').filter((l) => l.startsWith('line '));
    expect(lines).toEqual([
      'line 1: colour_typo: unknown column; ignored',
      expect.stringMatching(/^line 4: price\.USD: /),
      'line 5: categories: is not a category of this store',
      expect.stringMatching(/^line 8: price\.USD: must be >= 0/),
      'line 9: -: has 3 fields, the header 15; row skipped',
    ]);
    expect(result.output).toContain('4 products read: 1 created, 0 updated, 0 unchanged, 3 refused');
  }, 120_000);

  it('reports re-imported products as unchanged', async () => {
    const file = join(dir(), 'products.csv');
    const result = await run(file);
    expect(result.output).toContain('4 products read: 0 created, 0 updated, 1 unchanged, 3 refused');
  }, 120_000);

  it('reads a file saved with a UTF-8 byte order mark, as Excel and Notepad write it', async () => {
    const file = join(dir(), 'bom.jsonl');
    await writeFile(file, `\uFEFF${JSONL.split('\n')[0]}\r\n`);
    const result = await run(file);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain(
      '1 products read: 0 created, 0 updated, 1 unchanged, 0 refused; 0 problem(s)',
    );
  }, 120_000);

  it('refuses a file that is not UTF-8, naming the line, and imports nothing from it', async () => {
    const file = join(dir(), 'latin1.csv');
    const csv = 'handle,title,status,sku,price.USD\r\ncli-kettle,Stovetop Kettle,active,KETTLE-1,3900\r\n';
    await writeFile(
      file,
      Buffer.concat([Buffer.from(csv), Buffer.from('cli-cafe,Caf\xe9,active,CAFE-1,100\r\n', 'latin1')]),
    );
    const result = await run(file);
    expect(result.code).toBe(1);
    expect(result.output.trim()).toBe(`${file}: line 3 is not UTF-8 text; save the file as UTF-8`);
  }, 120_000);

  it('fails a file that holds no products, and says plainly that a directory is not a file', async () => {
    const empty = join(dir(), 'empty.jsonl');
    await writeFile(empty, '\n\n');
    const none = await run(empty);
    expect(none.code).toBe(1);
    expect(none.output).toContain('line 1: -: the file holds no products');
    const folder = join(dir(), 'folder.csv');
    await mkdir(folder, { recursive: true });
    const directory = await run(folder);
    expect(directory.code).toBe(1);
    expect(directory.output.trim()).toBe(`${folder}: is a directory, not a file`);
  }, 120_000);
}

describe.runIf(kind === 'pglite')('mercato catalog import and reindex (embedded)', () => {
  let dataDir: string;
  const env = () => ({ MERCATO_DATA_DIR: dataDir, MERCATO_DEMO: 'false' });

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'mercato-catalog-cli-'));
    const created = await mercato(
      [
        'tenants',
        'create',
        '--slug',
        'kitchen',
        '--name',
        'Kitchen',
        '--admin-email',
        'admin@kitchen.test',
        '--admin-password',
        'correct-horse-battery-staple',
      ],
      env(),
    );
    expect(created.code, created.output).toBe(0);
  }, 180_000);
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  checkReports(
    async (file) => mercato(['catalog', 'import', file, '--tenant', 'kitchen'], env()),
    () => dataDir,
  );

  it('says plainly what is wrong with the file or the tenant', async () => {
    const unknown = await mercato(
      ['catalog', 'import', join(dataDir, 'products.csv'), '--tenant', 'nope'],
      env(),
    );
    expect(unknown.code).toBe(1);
    expect(unknown.output).toContain('no tenant with slug "nope"');
    const missing = await mercato(
      ['catalog', 'import', join(dataDir, 'gone.jsonl'), '--tenant', 'kitchen'],
      env(),
    );
    expect(missing.output).toContain('gone.jsonl: no such file');
    const kindOf = await mercato(['catalog', 'import', join(dataDir, 'x.txt'), '--tenant', 'kitchen'], env());
    expect(kindOf.output).toContain('must end in .jsonl or .csv');
  }, 180_000);

  it('reindexes the products of every tenant and says how many, or which tenant it does not know', async () => {
    const all = await mercato(['catalog', 'reindex'], env());
    expect(all.code, all.output).toBe(0);
    expect(all.output).toContain('kitchen: 3 search document(s) rebuilt');
    expect(all.output).toMatch(/^3 search document\(s\) rebuilt in \d+ tenant\(s\)$/m);
    const unknown = await mercato(['catalog', 'reindex', '--tenant', 'nope'], env());
    expect(unknown.code).toBe(1);
    expect(unknown.output.trim()).toBe('no tenant with slug "nope"');
  }, 180_000);
});

describe.runIf(kind === 'postgres')('mercato catalog import and reindex (PostgreSQL)', () => {
  let t: CatalogTestApp;
  let shop: Shop;
  let dir: string;

  beforeAll(async () => {
    t = await startCatalogApp();
    shop = await createShop(t, 'kitchen');
    dir = await mkdtemp(join(tmpdir(), 'mercato-catalog-cli-'));
  });
  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  checkReports(
    async (file) => {
      const run = runMercato(['catalog', 'import', file, '--tenant', 'kitchen'], {
        DATABASE_URL: t.databaseUrl,
      });
      const code = await run.exited;
      return { code, output: run.output(), errors: run.errors() };
    },
    () => dir,
  );

  it('writes what it imported as the API shows it, with its events', async () => {
    const tee = await send(t.app, 'GET', '/api/v1/products/cli-tee', shop.anonymous);
    expect(tee.statusCode).toBe(200);
    expect(tee.json<Product>()).toMatchObject({
      title: 'Cotton Tee',
      description: 'Soft, "heavy" cotton',
      tags: ['summer', 'basics'],
      attributes: { material: 'cotton' },
      images: [{ url: 'https://cdn.example.com/tee.jpg', alt: 'Tee' }],
      variants: [
        { sku: 'TEE-S', options: { size: 'S' }, prices: { USD: 1500, EUR: 1400 }, weightGrams: 180 },
        { sku: 'TEE-M', options: { size: 'M' }, prices: { USD: 1500, EUR: 1400 }, weightGrams: 190 },
      ],
    });
    expect((await send(t.app, 'GET', '/api/v1/products/cli-mug', shop.staff)).statusCode).toBe(404);
    const events = await productEvents(t, shop.id);
    expect(events.filter((e) => e.type === 'mercato.product.created').map((e) => e.data['handle'])).toEqual([
      'cli-kettle',
      'cli-pan',
      'cli-tee',
    ]);
  });

  it('reindexes a tenant named by id, so documents written before NFKC indexing are found again', async () => {
    const created = await send(t.app, 'POST', '/api/v1/products', shop.staff, {
      handle: 'cli-usb-lamp',
      title: 'ＵＳＢ Ｄｅｓｋ Ｌａｍｐ',
      status: 'active',
      variants: [{ sku: 'LAMP-1', prices: { USD: 1900 } }],
    });
    expect(created.statusCode).toBe(201);
    const lamp = created.json<Product>().id;
    const found = async () => {
      const res = await send(t.app, 'GET', '/api/v1/products?q=usb', shop.anonymous);
      return res.json<{ items: Array<{ id: string }> }>().items.map((i) => i.id);
    };
    expect(await found()).toEqual([lamp]);
    await makeDocumentPreNfkc(t, lamp);
    await until(async () => (await found()).length === 0, 'the pre-NFKC document to be searched');

    const products = await withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from catalog.products`.execute(trx);
      return rows[0]!.n;
    });
    const run = runMercato(['catalog', 'reindex', '--tenant', shop.id], { DATABASE_URL: t.databaseUrl });
    expect(await run.exited, run.output()).toBe(0);
    expect(run.output()).toContain(`kitchen: ${products} search document(s) rebuilt`);
    expect(run.output()).toContain(`${products} search document(s) rebuilt in 1 tenant(s)`);
    await until(async () => (await found()).includes(lamp), 'the rebuilt document to be found');
  }, 120_000);

  it('says plainly which tenant it does not know', async () => {
    const env = { DATABASE_URL: t.databaseUrl };
    const slug = await mercato(['catalog', 'reindex', '--tenant', 'nope'], env);
    expect(slug.code).toBe(1);
    expect(slug.output.trim()).toBe('no tenant with slug "nope"');
    const id = '0190a0e4-0000-7000-8000-000000000000';
    const unknown = await mercato(['catalog', 'reindex', '--tenant', id], env);
    expect(unknown.code).toBe(1);
    expect(unknown.output.trim()).toBe(`no tenant with id "${id}"`);
  }, 120_000);
});
