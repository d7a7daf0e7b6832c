/**
 * `npm run bench:flash` (issue 12): a flash sale over HTTP, Mercato beside bare Fastify and the
 * textbook design, in one run, writing the figures and the machine into bench/README.md:
 * - mercato: `mercato start` with its Redis gate; 100,000 signed-in customers (tokens signed with
 *   the server's key, bench/flash/customers.ts) try to buy a sale of 10,000 units, one each, at 256
 *   connections (bench/flash/client.ts) until it sells out, then go on for the sold-out phase;
 *   afterwards SQL checks the record against the answers (bench/flash/checks.ts);
 * - bare: Fastify answering 202 (bench/flash/bare-server.ts), same client and connections, for as
 *   long as Mercato's whole sale;
 * - textbook: Fastify, JWT check and one Lua DECR per attempt on the same Redis, no durable record
 *   (bench/flash/textbook-server.ts), same customers and phases.
 * Each server is a child process, one after the other. Mercato's database `mercato_bench_flash` is
 * dropped and created per run (dropped at the end unless BENCH_KEEP_DB=1); every Redis key either
 * side writes is under BENCH_REDIS_PREFIX, deleted before and after.
 *
 * Knobs: BENCH_ONLY (parts, default mercato,bare,textbook; Mercato always starts, for the customers),
 * BENCH_CUSTOMERS (100000), BENCH_UNITS (10000), BENCH_LIMIT (1), BENCH_CONNECTIONS (256),
 * BENCH_SOLDOUT_SECONDS (10), BENCH_MAX_SELLING_SECONDS (600), BENCH_WARMUP (2 s per side, on a sale of
 * BENCH_WARMUP_UNITS, 1000), BENCH_DURATION (the bare run's seconds when Mercato's part does not run;
 * 10), BENCH_PAY=1 (attempts carry `tok_visa`: the payment queue runs sagas during the sale),
 * MERCATO_WORKERS (1: client, server, PostgreSQL and Redis share this machine's two cores),
 * MERCATO_DB_POOL_SIZE, BENCH_DATABASE_URL, BENCH_REDIS_URL, BENCH_REDIS_PREFIX, BENCH_KEEP_DB=1,
 * BENCH_SERVER_NODE_OPTIONS (Mercato's NODE_OPTIONS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/flashprof`).
 * Only a full run (every part, at least 100,000 customers and 10,000 units, a sold-out phase of 10 s
 * or more, no BENCH_PAY, nothing failed) rewrites bench/README.md; BENCH_WRITE_README=1/0 overrides.
 *
 * A smoke run of the harness (about 30 s, README left alone; no test runs the bench):
 * `BENCH_CUSTOMERS=3000 BENCH_UNITS=300 BENCH_WARMUP_UNITS=100 BENCH_SOLDOUT_SECONDS=2 BENCH_WARMUP=1
 * BENCH_CONNECTIONS=64 npm run bench:flash`. It exits 1 when a part failed or a check disagreed.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { apiAt, login } from './commerce/api.ts';
import {
  ADMIN_EMAIL,
  createBenchTenant,
  createDatabase,
  DURATION,
  dropDatabase,
  PASSWORD,
  quietAndAnalyze,
  type Server,
  TENANT,
  useDatabase,
  WARMUP,
  WORKERS,
} from './commerce/setup.ts';
import { checkMercato, checkTextbook } from './flash/checks.ts';
import { runSale, type Stop } from './flash/client.ts';
import { type Buyer, createCustomers } from './flash/customers.ts';
import { type Figures, report } from './flash/report.ts';
import {
  BODY,
  CONNECTIONS,
  CUSTOMERS,
  clearRedis,
  createSale,
  LIMIT,
  MAX_SELLING_SECONDS,
  MERCATO_DB,
  type MercatoServer,
  PAY,
  type RedisCounters,
  redisClient,
  redisCounters,
  redisDelta,
  type Sale,
  SOLDOUT_SECONDS,
  startBare,
  startMercatoForSale,
  startTextbook,
  TEXTBOOK_REDIS_PREFIX,
  UNITS,
  WARMUP_UNITS,
} from './flash/setup.ts';
import { describeMachine } from './machine.ts';
import { chosenParts, writeSectionIf } from './results-file.ts';

const ALL = ['mercato', 'bare', 'textbook'];
const parts = chosenParts(ALL);

const step = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
  const started = performance.now();
  console.log(`--- ${name}`);
  const result = await run();
  console.log(`--- ${name}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return result;
};

useDatabase(MERCATO_DB);
const redis = redisClient();
const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
await clearRedis(redis);
const figures: Figures = {
  date: new Date().toISOString().slice(0, 10),
  machine: describeMachine([`nproc ${availableParallelism()}`]),
  pgVersion: await createDatabase(),
  redisVersion,
  workers: WORKERS,
  customers: CUSTOMERS,
  units: UNITS,
  limit: LIMIT,
  connections: CONNECTIONS,
  soldOutSeconds: SOLDOUT_SECONDS,
  warmup: WARMUP,
  warmupUnits: WARMUP_UNITS,
  pay: PAY,
  load: { before: loadavg()[0]! },
  notes: [],
};
const failed: string[] = [];
const problem = (error: unknown) => String(error instanceof Error ? error.message : error).split('\n')[0];
let mercato: MercatoServer | undefined;
/** Why Mercato is gone, when it exited by itself. */
const mercatoGone = () => {
  const code = mercato?.exitCode();
  return code === undefined
    ? ''
    : ` (Mercato exited with ${code}; its last output: ${mercato!.tail(600).trim()})`;
};
const part = async (name: string, run: () => Promise<void>) => {
  if (!parts.includes(name)) return;
  try {
    await step(name, run);
  } catch (error) {
    failed.push(name);
    figures.notes.push(`The ${name} part FAILED: ${problem(error)}${mercatoGone()}`);
    console.error(`--- ${name}: FAILED`, error, mercatoGone());
  }
};

/**
 * The load of one side: its warm-up sale for WARMUP s (customers never stop), `beforeRun`, then the
 * measured sale.
 */
async function warmAndRun(
  name: string,
  base: string,
  buyers: Buyer[],
  paths: { warm: string; sale: string },
  stop: Stop,
  hooks: { beforeRun?: () => Promise<void>; onSoldOut?: () => void } = {},
) {
  const common = { base, buyers, connections: CONNECTIONS, body: BODY };
  if (WARMUP > 0) {
    await runSale({
      ...common,
      name: `${name} warm-up`,
      path: paths.warm,
      keyPrefix: `${name[0]}w-`,
      stop: { kind: 'time', seconds: WARMUP },
    });
  }
  await hooks.beforeRun?.();
  return runSale({
    ...common,
    name,
    path: paths.sale,
    keyPrefix: `${name[0]}-`,
    stop,
    ...(hooks.onSoldOut ? { onSoldOut: hooks.onSoldOut } : {}),
  });
}

/** Redis's counters from now to the selling phase's end and to the sale's end. */
function redisWatch() {
  let before: RedisCounters | undefined;
  let atSoldOut: Promise<RedisCounters> | undefined;
  return {
    async start() {
      before = await redisCounters(redis);
    },
    onSoldOut() {
      atSoldOut = redisCounters(redis);
    },
    async end() {
      const after = await redisCounters(redis);
      const selling = atSoldOut ? redisDelta(before!, await atSoldOut) : undefined;
      return { ...(selling ? { selling } : {}), whole: redisDelta(before!, after) };
    },
  };
}

const saleStop: Stop = {
  kind: 'sale',
  units: UNITS,
  soldOutSeconds: SOLDOUT_SECONDS,
  maxSellingSeconds: MAX_SELLING_SECONDS,
};
let agreed = true;
const started = performance.now();
let peer: Server | undefined;
try {
  mercato = await step('start mercato', () => startMercatoForSale());
  const base = mercato.base;
  const { api, tenantId } = await step('shop and sales', () => createBenchTenant(base));
  const sale: Sale = await createSale(api, 'sale', UNITS);
  const warm: Sale = await createSale(api, 'warm-up', WARMUP_UNITS);
  const { buyers, publicJwk } = await step(`${CUSTOMERS} customers signed in`, () =>
    createCustomers({ id: tenantId, slug: TENANT }, CUSTOMERS),
  );
  await step('quiet and analyze', () => quietAndAnalyze('set-up'));

  await part('mercato', async () => {
    const watch = redisWatch();
    figures.mercato = await warmAndRun(
      'Mercato',
      base,
      buyers,
      { warm: warm.path, sale: sale.path },
      saleStop,
      {
        beforeRun: async () => {
          // The warm-up sale filled tables that were empty at the set-up's analyze.
          await quietAndAnalyze('after the warm-up');
          await watch.start();
        },
        onSoldOut: watch.onSoldOut,
      },
    );
    figures.mercatoRedis = await watch.end();
    api.token = await login(apiAt(base), TENANT, ADMIN_EMAIL, PASSWORD);
    figures.mercatoStats = await api.must('GET', `/api/v1/flash-sales/${sale.id}/stats`);
    figures.mercatoCheck = await checkMercato(sale, LIMIT, figures.mercato);
    agreed &&= figures.mercatoCheck.agree;
  });
  await mercato.stop();
  mercato = undefined;

  await part('bare', async () => {
    const seconds = figures.mercato?.whole.seconds ?? DURATION;
    if (!figures.mercato)
      figures.notes.push(`The bare run lasted BENCH_DURATION, ${DURATION} s (Mercato's part did not run).`);
    peer = await step('start bare peer', startBare);
    figures.bare = await warmAndRun(
      'Bare',
      peer.base,
      buyers,
      { warm: warm.path, sale: sale.path },
      { kind: 'time', seconds },
    );
    await peer.stop();
    peer = undefined;
  });

  await part('textbook', async () => {
    const saleId = randomUUID();
    const warmId = randomUUID();
    await redis.set(`${TEXTBOOK_REDIS_PREFIX}{${saleId}}:remaining`, UNITS);
    await redis.set(`${TEXTBOOK_REDIS_PREFIX}{${warmId}}:remaining`, WARMUP_UNITS);
    peer = await step('start textbook peer', () => startTextbook(publicJwk));
    const watch = redisWatch();
    const paths = {
      warm: `/api/v1/flash-sales/${warmId}/orders`,
      sale: `/api/v1/flash-sales/${saleId}/orders`,
    };
    figures.textbook = await warmAndRun('Textbook', peer.base, buyers, paths, saleStop, {
      beforeRun: watch.start,
      onSoldOut: watch.onSoldOut,
    });
    figures.textbookRedis = await watch.end();
    figures.textbookCheck = await checkTextbook(
      redis,
      TEXTBOOK_REDIS_PREFIX,
      saleId,
      UNITS,
      LIMIT,
      figures.textbook,
    );
    agreed &&= figures.textbookCheck.agree;
    await peer.stop();
    peer = undefined;
  });
} catch (error) {
  failed.push('setup');
  figures.notes.push(`The set-up FAILED: ${problem(error)}${mercatoGone()}`);
  console.error('--- set-up: FAILED', error, mercatoGone());
} finally {
  figures.load.after = loadavg()[0]!;
  await (peer as Server | undefined)?.stop().catch(() => {});
  await mercato?.stop().catch(() => {});
  if (process.env['BENCH_KEEP_DB'] !== '1') await dropDatabase().catch(() => {});
  await clearRedis(redis).catch(() => {});
  redis.disconnect();
}
console.log(`--- whole run: ${((performance.now() - started) / 1000).toFixed(0)} s`);
if (!agreed) failed.push('checks');

const { body, summary } = report(figures);
const full =
  parts.length === ALL.length &&
  CUSTOMERS >= 100_000 &&
  UNITS >= 10_000 &&
  SOLDOUT_SECONDS >= 10 &&
  !PAY &&
  failed.length === 0;
await writeSectionIf('flash', body, full);
console.log(`\n${summary}`);
if (failed.length > 0) {
  console.error(`\nFAILED: ${failed.join(', ')}`);
  process.exit(1);
}
process.exit(0);
