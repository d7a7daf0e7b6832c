import { readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Command } from 'commander';
import type { Kysely } from 'kysely';
import {
  type FileProblem,
  type ParsedFile,
  parseJsonl,
  parseProductsCsv,
} from '../catalog/import/import-file.ts';
import {
  type CatalogModule,
  type CatalogTables,
  createCatalog,
  type RowOutcome,
  reindexProducts,
} from '../catalog/index.ts';
import { findTenantById, findTenantBySlug, listTenants } from '../identity/tenants/index.ts';
import type { AppContext, Config } from '../platform/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import { createWal } from '../wal/index.ts';
import { CliError, withDatabase } from './database-command.ts';

/** The largest file `mercato catalog import` reads. */
const MAX_FILE_BYTES = 256 * 1024 * 1024;

/** A progress bar on stderr: redrawn in place on a terminal, a line per tenth otherwise. */
function progressBar(total: number) {
  const tty = process.stderr.isTTY === true;
  let lastTenth = -1;
  return (done: number, failed: number) => {
    const ratio = total === 0 ? 1 : done / total;
    const percent = Math.floor(ratio * 100);
    const filled = Math.round(ratio * 30);
    const text = `[${'#'.repeat(filled)}${'-'.repeat(30 - filled)}] ${percent}% ${done}/${total} products, ${failed} failed`;
    if (tty) process.stderr.write(`\r${text}${done === total ? '\n' : ''}`);
    else if (Math.floor(percent / 10) !== lastTenth || done === total) {
      lastTenth = Math.floor(percent / 10);
      process.stderr.write(`${text}\n`);
    }
  };
}

/** Why a file cannot be read, in words, from the error of stat or readFile. */
function unreadable(file: string, error: unknown): CliError {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === 'ENOENT') return new CliError(`${file}: no such file`);
  if (code === 'EISDIR') return new CliError(`${file}: is a directory, not a file`);
  if (code === 'EACCES' || code === 'EPERM') return new CliError(`${file}: permission denied`);
  return new CliError(`${file}: cannot be read (${error instanceof Error ? error.message : String(error)})`);
}

/** The file's text: UTF-8 (a BOM dropped), or a CliError naming the line of the first bad byte. */
function decodeUtf8(file: string, bytes: Buffer): string {
  // Fatal: a byte that is not UTF-8 would otherwise become U+FFFD in the products, silently.
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    return decoder.decode(bytes); // a leading BOM is consumed, as Excel and Notepad write one
  } catch {
    // A newline byte never occurs inside a UTF-8 sequence: the lines can be tried one by one.
    let line = 1;
    for (let start = 0; start <= bytes.length; line++) {
      const end = bytes.indexOf(0x0a, start);
      const stop = end === -1 ? bytes.length : end;
      try {
        decoder.decode(bytes.subarray(start, stop));
      } catch {
        break;
      }
      start = stop + 1;
    }
    throw new CliError(`${file}: line ${line} is not UTF-8 text; save the file as UTF-8`);
  }
}

async function readProducts(file: string): Promise<ParsedFile> {
  const kind = extname(file).toLowerCase();
  if (kind !== '.jsonl' && kind !== '.csv')
    throw new CliError(`${file}: the file must end in .jsonl or .csv`);
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch (error) {
    throw unreadable(file, error);
  }
  if (size > MAX_FILE_BYTES)
    throw new CliError(`${file}: larger than ${MAX_FILE_BYTES / 1024 / 1024} MB; split it`);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw unreadable(file, error);
  }
  const text = decodeUtf8(file, bytes);
  const parsed = kind === '.csv' ? parseProductsCsv(text) : parseJsonl(text);
  // A file without a single product is a mistake (the wrong file, an export that failed): say so.
  if (parsed.rows.length === 0 && parsed.problems.length === 0)
    parsed.problems.push({ line: 1, field: '-', reason: 'the file holds no products' });
  return parsed;
}

/** The problems of one refused product, each at its line and field. */
function problemsOf(
  row: ParsedFile['rows'][number],
  outcome: Extract<RowOutcome, { status: 'failed' }>,
): FileProblem[] {
  if (outcome.errors.length === 0)
    return [{ line: row.line, field: '-', reason: `${outcome.code}: ${outcome.detail}` }];
  return outcome.errors.map((e) => ({
    ...row.locate(e.pointer === '/' ? '' : e.pointer),
    reason: e.message,
  }));
}

async function importFile(catalog: CatalogModule, tenantId: string, file: string) {
  const parsed = await readProducts(file);
  const problems: FileProblem[] = [...parsed.problems];
  const bar = progressBar(parsed.rows.length);
  let failed = 0;
  bar(0, 0);
  const outcomes = await catalog.importProducts(
    tenantId,
    parsed.rows.map((r) => r.row),
    {
      meta: { correlationId: `cli-import-${Date.now()}` },
      onRow: (index, outcome) => {
        if (outcome.status === 'failed') {
          failed += 1;
          problems.push(...problemsOf(parsed.rows[index]!, outcome));
        }
        bar(index + 1, failed);
      },
    },
  );
  const count = (status: RowOutcome['status']) => outcomes.filter((o) => o.status === status).length;
  for (const p of problems.sort((a, b) => a.line - b.line))
    console.log(`line ${p.line}: ${p.field}: ${p.reason}`);
  console.log(
    `${parsed.rows.length} products read: ${count('created')} created, ${count('updated')} updated, ${count('unchanged')} unchanged, ${count('failed')} refused; ${problems.length} problem(s)`,
  );
  return problems.length;
}

/** The tenants `catalog reindex` rebuilds: the one named by slug or id, else every tenant. */
async function tenantsNamed(
  ctx: AppContext,
  ref: string | undefined,
): Promise<{ id: string; slug: string }[]> {
  const db = ctx.db.kysely;
  if (ref === undefined) {
    const all: { id: string; slug: string }[] = [];
    for (let page = await listTenants(db, 1_000, undefined); page.length > 0; ) {
      all.push(...page);
      page = await listTenants(db, 1_000, page.at(-1)!.id);
    }
    return all;
  }
  const tenant = isUuid(ref) ? await findTenantById(db, ref.toLowerCase()) : await findTenantBySlug(db, ref);
  if (!tenant) throw new CliError(`no tenant with ${isUuid(ref) ? 'id' : 'slug'} "${ref}"`);
  return [{ id: tenant.id, slug: tenant.slug }];
}

/** `mercato catalog reindex`: every product's search document rebuilt with the current code. */
async function reindex(ctx: AppContext, ref: string | undefined): Promise<void> {
  const db = ctx.db.kysely as Kysely<CatalogTables>;
  let total = 0;
  const tenants = await tenantsNamed(ctx, ref);
  for (const tenant of tenants) {
    let reported = 0;
    const rebuilt = await reindexProducts(db, tenant.id, {
      // A line on stderr per 10,000 products: a large catalog takes minutes.
      onProgress: (done) => {
        if (done - reported < 10_000) return;
        reported = done;
        process.stderr.write(`${tenant.slug}: ${done} rebuilt so far\n`);
      },
    });
    total += rebuilt;
    console.log(`${tenant.slug}: ${rebuilt} search document(s) rebuilt`);
  }
  console.log(`${total} search document(s) rebuilt in ${tenants.length} tenant(s)`);
}

/** `mercato catalog import FILE`: products from JSON Lines or CSV, every bad row reported. */
export function registerCatalogCommands(program: Command, config: () => Config): void {
  const catalog = program.command('catalog').description('manage the product catalog');
  catalog
    .command('import')
    .description(
      'create or replace products by handle from a .jsonl file (one product per line, as POST /products takes it) or a .csv file (one row per variant; columns in src/catalog/README.md); reports every bad row as "line N: field: reason" and exits 1 if there was any',
    )
    .argument('<file>', 'a .jsonl or .csv file')
    .requiredOption('--tenant <slug>', 'the store to import into')
    .action(async (file: string, opts: { tenant: string }) => {
      const problems = await withDatabase(config(), async (ctx, identity) => {
        const tenant = await findTenantBySlug(identity.deps.db, opts.tenant);
        if (!tenant) throw new CliError(`no tenant with slug "${opts.tenant}"`);
        const wal = await createWal(ctx);
        const module = await createCatalog(ctx, {
          events: wal.events,
          resolveTenant: identity.resolveTenant,
        });
        return importFile(module, tenant.id, file);
      });
      if (problems > 0) process.exitCode = 1;
    });
  catalog
    .command('reindex')
    .description(
      "rebuild every product's search document with the current indexing code (run once after an upgrade that changes indexing, see src/catalog/README.md); 500 products per transaction, safe while the server runs",
    )
    .option('--tenant <slug|id>', 'only this tenant (default: every tenant)')
    .action(async (opts: { tenant?: string }) => {
      await withDatabase(config(), (ctx) => reindex(ctx, opts.tenant));
    });
}
