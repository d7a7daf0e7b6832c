/**
 * Shared by the parts of `npm run bench:wal`: the knobs, the 1 KiB payload, the figures every part
 * adds to, and small helpers (closed-loop and paced load, percentiles, PostgreSQL and Redis admin).
 */
import type { Redis } from 'ioredis';
import pg from 'pg';

const env = process.env;
export const scale = Number(env['BENCH_SCALE'] ?? 1);
const count = (name: string, fallback: number) =>
  Math.max(1, Math.round(Number(env[name] ?? fallback) * scale));
export const SINGLE_TOTAL = count('BENCH_SINGLE_TOTAL', 20_000);
export const CONCURRENCY = Number(env['BENCH_CONCURRENCY'] ?? 64);
/** Single writes before the timed ones, on every side: the JIT's warm-up, not measured. */
export const WARMUP = Math.min(count('BENCH_WARMUP', 5_000), SINGLE_TOTAL);
export const BATCH_SIZE = Number(env['BENCH_BATCH_SIZE'] ?? 1000);
export const BATCHES = count('BENCH_BATCHES', 20);
export const DELIVER = count('BENCH_DELIVER', 20_000);
export const DELAYED = count('BENCH_DELAYED', 2_000);
/** Messages written one at a time at LATENCY_RATE per second, consumer running, for end-to-end latency. */
export const LATENCY = count('BENCH_LATENCY', 5_000);
export const LATENCY_RATE = Number(env['BENCH_LATENCY_RATE'] ?? 500);
/** Handlers in flight at once: the namespaces' consumerConcurrency, BullMQ's Worker concurrency. */
export const WORKER_CONCURRENCY = Number(env['BENCH_WORKER_CONCURRENCY'] ?? 8);
export const MEMORY_SMALL = count('BENCH_MEMORY_SMALL', 100_000);
export const MEMORY_LARGE = count('BENCH_MEMORY_LARGE', 1_000_000);
export const DURATION = Math.max(2, Math.round(Number(env['BENCH_DURATION'] ?? 10) * Math.min(1, scale)));
export const WORKERS = env['MERCATO_WORKERS'] ?? '1';
export const adminUrl = env['BENCH_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
/** Every Redis key the benchmark writes starts with this; deleted before and after. */
export const REDIS_PREFIX = env['BENCH_REDIS_PREFIX'] ?? 'mercato-bench';
export const MERCATO_DB = 'mercato_bench_wal';
export const BOSS_DB = 'pgboss_bench';
export const urlOf = (db: string) => Object.assign(new URL(adminUrl), { pathname: `/${db}` }).toString();
export const PASSWORD = 'bench-password-1234';
export const ADMIN_EMAIL = 'admin@bench.test';

/** A JSON payload of exactly 1 KiB once serialized. */
export const PAYLOAD = (() => {
  const base = { kind: 'bench', data: '' };
  const pad = 1024 - JSON.stringify(base).length;
  return { kind: 'bench', data: 'x'.repeat(pad) };
})();

/** Every figure, by key; a part that fails leaves its keys out and adds a note. */
export const results: Record<string, number> = {};
export const notes: string[] = [];
/** Facts about the run that the report states (server versions, settings). */
export const facts: Record<string, string> = {};

export async function sqlAt(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Runs `total` calls of `op` with `callers` concurrent callers, each awaiting one at a time; returns calls/s. */
export async function closedLoop(
  total: number,
  callers: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(callers, total) }, async () => {
      while (next < total) {
        const i = next++;
        await op(i);
      }
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

/** Starts `op(i)` for i < total at `rate` per second (open loop: a slow op does not slow the next). */
export async function paced(total: number, rate: number, op: (i: number) => Promise<unknown>): Promise<void> {
  const started = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(op(i));
  }
  await Promise.all(pending);
}

export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return false;
}

/** Gives up on a wait after this long without progress (BENCH_STALL_SECONDS, default 60). */
export const STALL_MS = Number(env['BENCH_STALL_SECONDS'] ?? 60) * 1000;

/**
 * Waits until `current()` reaches `target`, logging progress every 5 s; gives up (false) after
 * STALL_MS without progress.
 */
export async function waitForCount(
  label: string,
  current: () => number | Promise<number>,
  target: number,
): Promise<boolean> {
  let last = -1;
  let lastChange = Date.now();
  let lastLog = Date.now();
  for (;;) {
    const now = await current();
    if (now >= target) return true;
    if (now !== last) {
      last = now;
      lastChange = Date.now();
    }
    if (Date.now() - lastChange > STALL_MS) {
      console.error(`${label}: stalled at ${now} of ${target} for ${STALL_MS / 1000} s`);
      return false;
    }
    if (Date.now() - lastLog > 5000) {
      console.log(`${label}: ${now} of ${target}`);
      lastLog = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The p-th quantile (0..1) of ascending-sorted `sorted`, by nearest rank; NaN when empty. */
export function quantileOf(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
}

/** The p-th quantile (0..1) of `values` by nearest rank; NaN when empty. */
export function quantile(values: number[], p: number): number {
  return quantileOf(
    [...values].sort((a, b) => a - b),
    p,
  );
}

/** Stores p50 and p99 of `values` as `${key}P50` / `${key}P99`. */
export function recordPercentiles(key: string, values: number[]): void {
  results[`${key}P50`] = quantile(values, 0.5);
  results[`${key}P99`] = quantile(values, 0.99);
}

/** Deletes every Redis key under `prefix` (SCAN, never KEYS). */
export async function deleteRedisKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Runs one part of the benchmark; a failure is printed and noted, and the run goes on. */
export async function runPart(name: string, part: () => Promise<void>): Promise<boolean> {
  const started = performance.now();
  console.log(`--- ${name}: starting`);
  try {
    await part();
    console.log(`--- ${name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return true;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    notes.push(`The ${name} part FAILED: ${message.split('\n')[0]}`);
    console.error(`--- ${name}: FAILED`, error);
    return false;
  }
}
