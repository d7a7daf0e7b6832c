/**
 * `npm run bench:commerce`: the storefront under load, on PostgreSQL, in one run, writing the
 * figures and the machine into bench/README.md:
 * - search (bench/commerce/search.ts): 100,000 generated products (bench/commerce/generator.ts)
 *   imported through `POST /api/v1/products/batch`, then plain, typo, prefix (suggest) and
 *   faceted queries at 16 connections, p50/p95/p99, beside a floor of `title ILIKE '%term%'`;
 * - hot (bench/commerce/hot-sku.ts): 64 clients reserving one unit each of one variant until it
 *   sells out, reservations/s and oversell, beside a floor of one plain UPDATE per request;
 * - reads (bench/commerce/reads.ts): cached `GET /api/v1/products/{id}` beside /health/live, and
 *   `POST /api/v1/cart/items` into guest carts.
 * Mercato runs as `mercato start` on a fresh database `mercato_bench_commerce` (dropped and created
 * each run, dropped at the end unless BENCH_KEEP_DB=1); the floors run in floor-server.ts.
 *
 * Knobs: BENCH_ONLY (parts, default search,hot,reads), BENCH_PRODUCTS (100000), BENCH_SEED,
 * BENCH_DURATION (10 s per load), BENCH_WARMUP (2 s), BENCH_HOT_STOCK (10000), BENCH_BATCH_SIZE
 * (1000), BENCH_IMPORT_IN_FLIGHT (2), MERCATO_WORKERS (1), MERCATO_DB_POOL_SIZE, BENCH_DATABASE_URL,
 * BENCH_KEEP_DB=1 (keep the database afterwards, for EXPLAIN), BENCH_SERVER_NODE_OPTIONS (the server's
 * NODE_OPTIONS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`), MERCATO_WAL_DELIVERY=false (the server
 * delivers no event, to measure what delivery costs; nothing then waits for the WAL to drain).
 * Only a full run (every part, 100,000 products) rewrites bench/README.md; BENCH_WRITE_README=1/0
 * overrides.
 */
import { availableParallelism, loadavg } from 'node:os';
import { type Api, apiAt, login } from './commerce/api.ts';
import { createCategories, importProducts, type LoadedCatalog } from './commerce/catalog-load.ts';
import { categoryPaths, generateProduct, querySets, slugify } from './commerce/generator.ts';
import { runHotSku } from './commerce/hot-sku.ts';
import { runCartAdds, runProductReads } from './commerce/reads.ts';
import { type Figures, report } from './commerce/report.ts';
import { runSearch } from './commerce/search.ts';
import {
  ADMIN_EMAIL,
  BATCH_SIZE,
  createBenchTenant,
  createDatabase,
  DURATION,
  dropDatabase,
  IMPORT_IN_FLIGHT,
  PASSWORD,
  PRODUCTS,
  SEED,
  type Server,
  serverVersion,
  sql,
  startFloor,
  startMercato,
  TENANT,
  WARMUP,
  WORKERS,
  waitForQuiet,
} from './commerce/setup.ts';
import { describeMachine } from './machine.ts';
import { chosenParts, writeSectionIf } from './results-file.ts';

const ALL = ['search', 'hot', 'reads'];
const REUSE = process.env['BENCH_REUSE_DB'] === '1';
const parts = chosenParts(ALL);

const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
  const started = performance.now();
  console.log(`--- ${name}`);
  const result = await run();
  console.log(`--- ${name}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return result;
};

let variants = 0;
if (!REUSE) for (let i = 0; i < PRODUCTS; i++) variants += generateProduct(SEED, i).variants.length;

const figures: Figures = {
  date: new Date().toISOString().slice(0, 10),
  machine: describeMachine([`nproc ${availableParallelism()}`]),
  pgVersion: REUSE ? await serverVersion() : await createDatabase(),
  workers: WORKERS,
  duration: DURATION,
  warmup: WARMUP,
  products: PRODUCTS,
  variants,
  load: { before: loadavg()[0]! },
  notes: [],
};
const failed: string[] = [];
const part = async (name: string, run: () => Promise<void>) => {
  try {
    // What an earlier part left for the server to deliver (events) is delivered first.
    await waitForQuiet(`before ${name}`);
    await step(name, run);
  } catch (error) {
    failed.push(name);
    figures.notes.push(
      `The ${name} part FAILED: ${String(error instanceof Error ? error.message : error).split('\n')[0]}`,
    );
    console.error(`--- ${name}: FAILED`, error);
  }
};

type Loaded = {
  api: Api;
  tenantId: string;
  categoryIds: Map<string, string>;
  /** By generation index. */
  productIds: string[];
  /** Products 0..n-1 are all present: queries are drawn from them. */
  queryableProducts: number;
};

/** A fresh catalog: the bench tenant, the category tree and PRODUCTS products through the batch route. */
async function loadFresh(server: Server): Promise<Loaded> {
  const { api, tenantId } = await step('tenant', () => createBenchTenant(server.base));
  const categoryIds = await step('categories', () => createCategories(api));
  const catalog: LoadedCatalog = await step('import', () =>
    importProducts(
      api,
      {
        seed: SEED,
        count: PRODUCTS,
        batchSize: BATCH_SIZE,
        inFlight: IMPORT_IN_FLIGHT,
        // This PostgreSQL runs with autovacuum off: analyze as it would while the tables grow, so
        // the planner does not go on planning for the empty tables it last saw.
        periodic: { every: 10_000, run: () => sql('analyze') },
      },
      categoryIds,
    ),
  );
  figures.import = {
    seconds: catalog.seconds,
    failed: catalog.failed,
    requests: catalog.requests,
    batchSize: BATCH_SIZE,
    inFlight: IMPORT_IN_FLIGHT,
  };
  return { api, tenantId, categoryIds, productIds: catalog.productIds, queryableProducts: PRODUCTS };
}

/**
 * BENCH_REUSE_DB=1: the catalog an earlier run (BENCH_KEEP_DB=1, or one stopped during its import)
 * left in the bench database, read back: products by the generation index their handle ends with.
 */
async function reuseLoaded(base: string): Promise<Loaded> {
  const api = apiAt(base);
  api.token = await login(api, TENANT, ADMIN_EMAIL, PASSWORD);
  const [tenant] = await sql<{ id: string }>(`select id from identity.tenants where slug = $1`, [TENANT]);
  const handles = new Map(
    (
      await sql<{ id: string; handle: string }>(
        'select id, handle from catalog.categories where tenant_id = $1',
        [tenant!.id],
      )
    ).map((r) => [r.handle, r.id]),
  );
  const categoryIds = new Map(
    categoryPaths().map((path) => [path.join(' > '), handles.get(slugify(path.join(' ')))!]),
  );
  const productIds: string[] = [];
  // The bench tenant's only: a demo product's handle read as a number would make a sparse array
  // billions long, which every later pass over it walks.
  const rows = await sql<{ id: string; handle: string }>(
    'select id, handle from catalog.products where tenant_id = $1',
    [tenant!.id],
  );
  for (const row of rows) {
    productIds[Number.parseInt(row.handle.slice(row.handle.lastIndexOf('-') + 1), 36)] = row.id;
  }
  let queryableProducts = 0;
  while (productIds[queryableProducts]) queryableProducts += 1;
  const present = productIds.filter(Boolean).length;
  figures.products = present;
  // Counted in SQL: generating 100,000 products again to count theirs blocks this process for
  // minutes (and undici then reuses keep-alive sockets the server has closed meanwhile).
  const [variants] = await sql<{ n: string }>(
    'select count(*) as n from catalog.variants where tenant_id = $1',
    [tenant!.id],
  );
  figures.variants = Number(variants!.n);
  const [span] = await sql<{ seconds: number }>(
    `select extract(epoch from max(created_at) - min(created_at))::float8 as seconds
       from catalog.products where tenant_id = $1`,
    [tenant!.id],
  );
  figures.notes.push(
    `Database reused (BENCH_REUSE_DB=1): ${present} products, imported through \`POST /api/v1/products/batch\`` +
      ` by an earlier run that was stopped during its import (its rows were written over ${Math.round(span!.seconds)} s,` +
      ` ${Math.round(present / span!.seconds)} products/s); queries are drawn from products 0 to ${queryableProducts - 1}.`,
  );
  return { api, tenantId: tenant!.id, categoryIds, productIds, queryableProducts };
}

const started = performance.now();
let mercato: Server | undefined;
let floor: Server | undefined;
try {
  mercato = await step('start mercato', startMercato);
  const loaded = REUSE
    ? await step('reuse database', () => reuseLoaded(mercato!.base))
    : await loadFresh(mercato);
  const { api, tenantId, categoryIds } = loaded;
  const drained = await step('events drain', () => waitForQuiet('events'));
  if (!REUSE) figures.drainSeconds = drained;
  // This PostgreSQL runs with autovacuum off (see above); analyze as autovacuum would after a bulk load.
  await step('analyze', () => sql('vacuum analyze'));
  if (!REUSE) {
    // Measured on a freshly started process, as after a deploy: nothing of the import stays in it.
    await step('restart mercato', async () => {
      await mercato!.stop();
      mercato = undefined;
      mercato = await startMercato();
      api.base = mercato.base;
    });
  }
  // The import and its events can outlast an access token: each part starts with a fresh one.
  api.token = await login(api, TENANT, ADMIN_EMAIL, PASSWORD);
  floor = await step('start floor', startFloor);
  const floorApi = apiAt(floor.base);
  const productIds = loaded.productIds.filter(Boolean);
  // Variant ids of the first products, read back from the catalog: 0 the hot SKU (22 to 29 stand
  // in for it on a reused database where it was reserved already), 1 its warm-up, 2 to 21 the cart.
  const variantIds: string[] = [];
  for (const id of productIds.slice(0, 30)) {
    const product = await api.must<{ variants: Array<{ id: string }> }>('GET', `/api/v1/products/${id}`);
    variantIds.push(product.variants[0]!.id);
  }
  if (parts.includes('search'))
    await part('search', async () => {
      figures.search = await runSearch(
        apiAt(mercato!.base),
        floorApi,
        querySets(SEED, loaded.queryableProducts),
        categoryIds,
      );
    });
  if (parts.includes('search'))
    await part('search without the answer cache', async () => {
      const uncached = await startMercato({ MERCATO_SEARCH_CACHE_TTL_SECONDS: '0' });
      try {
        figures.searchUncached = await runSearch(
          apiAt(uncached.base),
          undefined,
          querySets(SEED, loaded.queryableProducts),
          categoryIds,
        );
      } finally {
        await uncached.stop();
      }
    });
  if (parts.includes('reads'))
    await part('reads', async () => {
      figures.reads = await runProductReads(api, productIds);
      figures.cart = await runCartAdds(api, variantIds.slice(2, 22));
    });
  if (parts.includes('hot'))
    await part('hot', async () => {
      figures.hot = await runHotSku(
        api,
        floorApi,
        tenantId,
        [variantIds[0]!, ...variantIds.slice(22)],
        variantIds[1]!,
      );
    });
} catch (error) {
  failed.push('setup');
  figures.notes.push(
    `The set-up FAILED: ${String(error instanceof Error ? error.message : error).split('\n')[0]}`,
  );
  console.error('--- set-up: FAILED', error);
} finally {
  figures.load.after = loadavg()[0]!;
  await floor?.stop().catch(() => {});
  await mercato?.stop().catch(() => {});
  if (process.env['BENCH_KEEP_DB'] !== '1') await dropDatabase().catch(() => {});
}
console.log(`--- whole run: ${((performance.now() - started) / 1000).toFixed(0)} s`);

const { body, summary } = report(figures);
const full = !REUSE && PRODUCTS === 100_000 && parts.length === ALL.length && failed.length === 0;
await writeSectionIf('commerce', body, full);
console.log(`\n${summary}`);
if (failed.length > 0) {
  console.error(`\nFAILED: ${failed.join(', ')}`);
  process.exit(1);
}
process.exit(0);
