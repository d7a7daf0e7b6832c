/**
 * `npm run bench:checkout` (issue 11): the whole checkout over HTTP, and the order saga beside a
 * DBOS durable workflow doing the same three steps on the same PostgreSQL, in one run, writing the
 * figures and the machine into bench/README.md:
 * - single (bench/checkout/mercato-runs.ts): one guest shopper's checkouts one after another
 *   (cart, two items, address, shipping option, `POST /api/v1/orders` paying with `tok_visa`),
 *   p50/p99 of each call and of the whole checkout;
 * - flows: 64 customers each looping whole checkouts, completed checkouts/s;
 * - sagas: carts prepared beforehand, then 64 clients that only `POST /api/v1/orders`: completed
 *   sagas/s and p50/p99, the figure compared with DBOS;
 * - dbos (bench/checkout/dbos-runs.ts, dbos-server.ts): `@dbos-inc/dbos-sdk`'s workflow (reserve,
 *   pay, confirm) behind `POST /checkout`, by one client, then by 64 for the same time.
 * Mercato runs as `mercato start` on a fresh database `mercato_bench_checkout`, the peer on
 * `dbos_bench_checkout` (each dropped and created per run, dropped at the end unless
 * BENCH_KEEP_DB=1), each a child process, Mercato stopped before the peer starts.
 *
 * Knobs: BENCH_ONLY (parts, default single,flows,sagas,dbos), BENCH_FLOWS (200), BENCH_WARMUP_FLOWS
 * (20), BENCH_DURATION (10 s per concurrent run), BENCH_WARMUP (2 s), BENCH_CLIENTS (64),
 * BENCH_VARIANTS (200), BENCH_STOCK (1000000), BENCH_SAGA_CARTS (carts prepared for the sagas part;
 * default 3 × the whole-checkout rate × BENCH_DURATION), BENCH_DBOS_POOL (10), BENCH_DBOS_SYSTEM_POOL
 * (10), BENCH_SEED, MERCATO_WORKERS (1), MERCATO_DB_POOL_SIZE, BENCH_DATABASE_URL, BENCH_KEEP_DB=1,
 * BENCH_SERVER_NODE_OPTIONS (Mercato's NODE_OPTIONS), MERCATO_WAL_DELIVERY=false (Mercato delivers no event).
 * Only a full run (every part, BENCH_DURATION ≥ 10, BENCH_FLOWS ≥ 200, nothing failed) rewrites
 * bench/README.md; BENCH_WRITE_README=1/0 overrides.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { checkDbos, runDbos } from './checkout/dbos-runs.ts';
import { checkMercato, runFlows, runSagas, runSingle } from './checkout/mercato-runs.ts';
import { type Figures, report } from './checkout/report.ts';
import {
  CLIENTS,
  createShop,
  DBOS_DB,
  DBOS_POOL,
  DBOS_SYSTEM_POOL,
  dbosUrl,
  FLOWS,
  MERCATO_DB,
  SAGA_CARTS,
  type Shop,
  startDbos,
  VARIANTS,
  WARMUP_FLOWS,
} from './checkout/setup.ts';
import {
  adminUrl,
  createDatabase,
  DURATION,
  dropDatabase,
  quietAndAnalyze,
  type Server,
  sql,
  startMercato,
  useDatabase,
  WARMUP,
  WORKERS,
  waitForQuiet,
} from './commerce/setup.ts';
import { describeMachine } from './machine.ts';
import { chosenParts, writeSectionIf } from './results-file.ts';

const ALL = ['single', 'flows', 'sagas', 'dbos'];
const parts = chosenParts(ALL);
const mercatoParts = parts.filter((p) => p !== 'dbos');

const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
  const started = performance.now();
  console.log(`--- ${name}`);
  const result = await run();
  console.log(`--- ${name}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return result;
};

useDatabase(MERCATO_DB);
const dbosPackage = JSON.parse(
  await readFile(new URL('../node_modules/@dbos-inc/dbos-sdk/package.json', import.meta.url), 'utf8'),
) as { version: string };
const figures: Figures = {
  date: new Date().toISOString().slice(0, 10),
  machine: describeMachine([`nproc ${availableParallelism()}`]),
  pgVersion: await createDatabase(),
  dbosVersion: dbosPackage.version,
  workers: WORKERS,
  mercatoPool: process.env['MERCATO_DB_POOL_SIZE'] ?? '20',
  dbosPools: { tables: DBOS_POOL, system: DBOS_SYSTEM_POOL },
  duration: DURATION,
  warmup: WARMUP,
  flows: FLOWS,
  warmupFlows: WARMUP_FLOWS,
  clients: CLIENTS,
  variants: VARIANTS,
  checks: [],
  load: { before: loadavg()[0]! },
  notes: [],
};
const failed: string[] = [];
const problem = (error: unknown) => String(error instanceof Error ? error.message : error).split('\n')[0];
const part = async (name: string, run: () => Promise<void>) => {
  if (!parts.includes(name)) return;
  try {
    await step(name, run);
  } catch (error) {
    failed.push(name);
    figures.notes.push(`The ${name} part FAILED: ${problem(error)}`);
    console.error(`--- ${name}: FAILED`, error);
  }
};
let agreed = true;

const started = performance.now();
let mercato: Server | undefined;
let dbos: Server | undefined;
try {
  if (mercatoParts.length > 0) {
    mercato = await step('start mercato', () => startMercato());
    const shop: Shop = await step('shop', () => createShop(mercato!.base));
    await step('quiet and analyze', () => quietAndAnalyze('set-up'));
    const base = mercato.base;
    await part('single', async () => {
      figures.single = await runSingle(base, shop);
    });
    await part('flows', async () => {
      await quietAndAnalyze('before flows');
      figures.flowsRun = await runFlows(base, shop, WARMUP, DURATION);
    });
    await part('sagas', async () => {
      await quietAndAnalyze('before sagas');
      const rate = figures.flowsRun?.rate ?? 100;
      const carts = SAGA_CARTS ?? Math.max(CLIENTS * 4, Math.ceil(3 * rate * DURATION));
      figures.sagas = await runSagas(base, shop, carts, DURATION);
      if (figures.sagas.ranOut) {
        figures.notes.push(
          `The \`POST /orders\`-only run used all ${figures.sagas.carts} prepared carts in ${figures.sagas.seconds} s` +
            ` (of ${DURATION} s): its rate is over that time (BENCH_SAGA_CARTS prepares more).`,
        );
      }
    });
    await step('check mercato', async () => {
      await waitForQuiet('after the checkouts');
      const checked = await checkMercato(shop.tenantId);
      agreed &&= checked.agree;
      figures.checks.push(...checked.lines);
    });
    await mercato.stop();
    mercato = undefined;
  }
  await part('dbos', async () => {
    await sql(`drop database if exists ${DBOS_DB} with (force)`, [], adminUrl);
    await sql(`create database ${DBOS_DB}`, [], adminUrl);
    dbos = await step('start dbos peer', startDbos);
    await sql('analyze', [], dbosUrl);
    const { single, concurrent } = await runDbos(dbos.base, WARMUP, DURATION);
    figures.dbosSingle = single;
    figures.dbos = concurrent;
    const checked = await checkDbos();
    agreed &&= checked.agree;
    figures.checks.push(...checked.lines);
  });
} catch (error) {
  failed.push('setup');
  figures.notes.push(`The set-up FAILED: ${problem(error)}`);
  console.error('--- set-up: FAILED', error);
} finally {
  figures.load.after = loadavg()[0]!;
  await dbos?.stop().catch(() => {});
  await mercato?.stop().catch(() => {});
  if (process.env['BENCH_KEEP_DB'] !== '1') {
    await dropDatabase().catch(() => {});
    await sql(`drop database if exists ${DBOS_DB} with (force)`, [], adminUrl).catch(() => {});
  }
}
console.log(`--- whole run: ${((performance.now() - started) / 1000).toFixed(0)} s`);
if (!agreed) failed.push('checks');

const { body, summary } = report(figures);
const full = parts.length === ALL.length && DURATION >= 10 && FLOWS >= 200 && failed.length === 0;
await writeSectionIf('checkout', body, full);
console.log(`\n${summary}`);
if (failed.length > 0) {
  console.error(`\nFAILED: ${failed.join(', ')}`);
  process.exit(1);
}
process.exit(0);
