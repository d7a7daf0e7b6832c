/**
 * The set-up of `npm run bench:flash`: its knobs, Mercato started for a sale (its database of its
 * own, the shared Redis under a key prefix of its own), the sale itself (a product, its stock and a
 * live campaign, through the routes as the shop's admin), and the two peers' child processes.
 * Mercato's process, the bench tenant and the database helpers are bench:commerce's
 * (bench/commerce/setup.ts), pointed at this bench's database.
 */
import { Redis } from 'ioredis';
import { runMercato } from '../../src/cli/mercato-process.ts';
import type { Api } from '../commerce/api.ts';
import { stockVariant } from '../commerce/hot-sku.ts';
import { databaseUrl, PASSWORD, type Server, spawnChild, WORKERS } from '../commerce/setup.ts';

const env = process.env;
/** Signed-in customers, every one of them trying until the sale sells out. */
export const CUSTOMERS = Number(env['BENCH_CUSTOMERS'] ?? 100_000);
/** Units of the sale. */
export const UNITS = Number(env['BENCH_UNITS'] ?? 10_000);
/** Units one customer may buy (every attempt asks for one). */
export const LIMIT = Number(env['BENCH_LIMIT'] ?? 1);
/** Keep-alive connections of the load client, each with one attempt in flight. */
export const CONNECTIONS = Number(env['BENCH_CONNECTIONS'] ?? 256);
/** How long the customers go on trying once the sale sold out. */
export const SOLDOUT_SECONDS = Number(env['BENCH_SOLDOUT_SECONDS'] ?? 10);
/** The selling phase gives up after this long (a sale that never sells out is reported, not waited for). */
export const MAX_SELLING_SECONDS = Number(env['BENCH_MAX_SELLING_SECONDS'] ?? 600);
/** Attempts carry the test provider's succeeding token (the payment queue then runs sagas meanwhile). */
export const PAY = env['BENCH_PAY'] === '1';
/** The request body of every attempt, on every side. */
export const BODY = PAY ? JSON.stringify({ payment: { token: 'tok_visa' } }) : '{}';
/** Units of the warm-up sale (a campaign of its own, on another variant). */
export const WARMUP_UNITS = Number(env['BENCH_WARMUP_UNITS'] ?? 1000);
export const MERCATO_DB = 'mercato_bench_flash';
export const REDIS_URL = env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
/** Every key either side writes starts with this (deleted before and after the run). */
export const REDIS_PREFIX = env['BENCH_REDIS_PREFIX'] ?? 'mercato-bench-flash:';
/** Mercato's MERCATO_REDIS_PREFIX and the textbook peer's key prefix, under REDIS_PREFIX. */
export const MERCATO_REDIS_PREFIX = `${REDIS_PREFIX}mercato:`;
export const TEXTBOOK_REDIS_PREFIX = `${REDIS_PREFIX}textbook:`;
/** What a customer pays in the sale, EUR cents. */
export const SALE_PRICE = 4900;

/** Mercato's server for the sale, with what it printed (to tell why, should it exit mid-run). */
export type MercatoServer = Server & {
  /** The last `chars` of its stdout and stderr. */
  tail(chars?: number): string;
  /** The exit code or signal once it exited, else undefined. */
  exitCode(): number | string | null | undefined;
};

/**
 * `mercato start` on the bench database with bench:commerce's environment (rate limits out of the
 * way, the demo's platform admin), plus the Redis gate on the shared Redis under a prefix of its
 * own, and the per-IP attempt limit out of the way (every bench connection comes from 127.0.0.1);
 * the per-customer limit stays at its default.
 */
export async function startMercatoForSale(): Promise<MercatoServer> {
  const server = runMercato(['start'], {
    DATABASE_URL: databaseUrl,
    PORT: '0',
    LOG_LEVEL: 'warn',
    MERCATO_WORKERS: WORKERS,
    MERCATO_DEMO: 'true',
    MERCATO_DEMO_PASSWORD: PASSWORD,
    MERCATO_RATE_LIMIT_ANONYMOUS: '100000000',
    MERCATO_RATE_LIMIT_AUTHENTICATED: '100000000',
    MERCATO_LOGIN_RATE_LIMIT: '100000000',
    MERCATO_LOGIN_MAX_FAILURES: '100000000',
    ...(env['MERCATO_DB_POOL_SIZE'] ? { MERCATO_DB_POOL_SIZE: env['MERCATO_DB_POOL_SIZE'] } : {}),
    // Node flags for the server only (a CPU profile: --cpu-prof --cpu-prof-dir=/tmp/flashprof).
    ...(env['BENCH_SERVER_NODE_OPTIONS'] ? { NODE_OPTIONS: env['BENCH_SERVER_NODE_OPTIONS'] } : {}),
    REDIS_URL,
    MERCATO_REDIS_PREFIX,
    MERCATO_FLASH_IP_RATE: '100000000',
  });
  let code: number | string | null | undefined;
  void server.exited.then((c) => {
    code = c;
  });
  const [, base = ''] = await server.waitFor(/API +(http:\/\/[^\s]+)\/api\/v1/, 120_000);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return {
    base,
    tail: (chars = 2000) => server.output().slice(-chars),
    exitCode: () => code,
    async stop() {
      server.child.kill('SIGTERM');
      await server.exited;
    },
  };
}

export type Sale = { id: string; variantId: string; units: number; path: string };

/** An active product of one variant, `units` on hand and a campaign of `units` live now (one hour). */
export async function createSale(api: Api, name: string, units: number): Promise<Sale> {
  const sku = `FLASH-${name.toUpperCase().replace(/[^A-Z0-9]+/g, '-')}`;
  const product = await api.must<{ id: string; variants: Array<{ id: string }> }>(
    'POST',
    '/api/v1/products',
    {
      title: `Flash bench ${name}`,
      status: 'active',
      variants: [{ sku, options: { size: 'M' }, prices: { EUR: 9900 } }],
    },
  );
  const variantId = product.variants[0]!.id;
  // The inventory module may have made the item from the catalog's event already: then set it.
  const created = await api.call('POST', '/api/v1/inventory', {
    variantId,
    productId: product.id,
    onHand: units,
  });
  if (created.status === 409) await stockVariant(api, variantId, units);
  else if (created.status !== 201) {
    throw new Error(
      `POST /api/v1/inventory: ${created.status} ${JSON.stringify(created.body).slice(0, 300)}`,
    );
  }
  const sale = await api.must<{ id: string }>('POST', '/api/v1/flash-sales', {
    name: `Bench ${name}`,
    variantId,
    units,
    salePrice: SALE_PRICE,
    currency: 'EUR',
    startsAt: new Date(Date.now() - 1000).toISOString(),
    endsAt: new Date(Date.now() + 3_600_000).toISOString(),
    perCustomerLimit: LIMIT,
    paymentWindowMinutes: 60,
  });
  return { id: sale.id, variantId, units, path: `/api/v1/flash-sales/${sale.id}/orders` };
}

/** The bare Fastify peer (bare-server.ts): every attempt answered 202 at once. */
export const startBare = (): Promise<Server> =>
  spawnChild(new URL('./bare-server.ts', import.meta.url), {}, /BARE (http:\/\/\S+)/);

/** The textbook peer (textbook-server.ts): JWT check and one Lua DECR on the same Redis. */
export const startTextbook = (publicJwk: string): Promise<Server> =>
  spawnChild(
    new URL('./textbook-server.ts', import.meta.url),
    {
      REDIS_URL,
      BENCH_REDIS_PREFIX: TEXTBOOK_REDIS_PREFIX,
      BENCH_JWT_PUBLIC_JWK: publicJwk,
      BENCH_LIMIT: String(LIMIT),
    },
    /TEXTBOOK (http:\/\/\S+)/,
  );

/** The bench's own Redis connection (set-up of the textbook's sales, counters, clean-up). */
export const redisClient = () => new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 2 });

/** Deletes every key under REDIS_PREFIX. */
export async function clearRedis(redis: Redis): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${REDIS_PREFIX}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** What Redis has done so far: CPU seconds (user + system) and script calls (EVAL, EVALSHA). */
export type RedisCounters = { cpu: number; scripts: number; commands: number };

export async function redisCounters(redis: Redis): Promise<RedisCounters> {
  const [cpu, stats] = await Promise.all([redis.info('cpu'), redis.info('commandstats')]);
  const field = (text: string, name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(text)?.[1] ?? 0);
  const calls = (command: string) =>
    Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
  let commands = 0;
  for (const match of stats.matchAll(/cmdstat_[a-z|]+:calls=(\d+)/g)) commands += Number(match[1]);
  return {
    cpu: field(cpu, 'used_cpu_sys') + field(cpu, 'used_cpu_user'),
    scripts: calls('eval') + calls('evalsha'),
    commands,
  };
}

/** b − a, field by field. */
export const redisDelta = (a: RedisCounters, b: RedisCounters): RedisCounters => ({
  cpu: b.cpu - a.cpu,
  scripts: b.scripts - a.scripts,
  commands: b.commands - a.commands,
});
