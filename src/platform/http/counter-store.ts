import type { Redis } from 'ioredis';
import { AppError } from './errors.ts';

/**
 * Fixed-window counters keyed by string, for throttles that count something other than
 * requests (failed logins). In memory when embedded; in Redis when configured, so every
 * process shares them.
 */
export type CounterStore = {
  /** Adds one to key and returns the count in the current window and the seconds left in it. */
  increment(key: string, windowSeconds: number): Promise<{ count: number; ttlSeconds: number }>;
  peek(key: string): Promise<{ count: number; ttlSeconds: number }>;
  reset(key: string): Promise<void>;
};

export function memoryCounterStore(now: () => number = Date.now): CounterStore {
  const windows = new Map<string, { count: number; resetAt: number }>();
  const live = (key: string) => {
    const w = windows.get(key);
    if (w && w.resetAt <= now()) {
      windows.delete(key);
      return undefined;
    }
    return w;
  };
  const view = (w: { count: number; resetAt: number } | undefined) =>
    w
      ? { count: w.count, ttlSeconds: Math.max(1, Math.ceil((w.resetAt - now()) / 1000)) }
      : { count: 0, ttlSeconds: 0 };
  const sweep = setInterval(() => {
    for (const key of windows.keys()) live(key);
  }, 60_000);
  sweep.unref();
  return {
    async increment(key, windowSeconds) {
      const w = live(key) ?? { count: 0, resetAt: now() + windowSeconds * 1000 };
      w.count += 1;
      windows.set(key, w);
      return view(w);
    },
    async peek(key) {
      return view(live(key));
    },
    async reset(key) {
      windows.delete(key);
    },
  };
}

const INCREMENT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('TTL', KEYS[1])}`;

/** Runs a Redis call; a failure is a 503 with Retry-After, not a 500 (the throttles it backs fail closed). */
async function shared<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const detail = 'a shared counter is unavailable; retry shortly';
    throw new AppError('SERVICE_UNAVAILABLE', detail, { retryAfterSeconds: 5 }, { cause: error });
  }
}

export function redisCounterStore(redis: Redis, prefix = 'mercato:counter:'): CounterStore {
  return {
    async increment(key, windowSeconds) {
      const reply = await shared(() => redis.eval(INCREMENT, 1, prefix + key, windowSeconds));
      const [count, ttl] = reply as [number, number];
      return { count, ttlSeconds: Math.max(1, ttl) };
    },
    async peek(key) {
      const k = prefix + key;
      const [count, ttl] = await shared(() => Promise.all([redis.get(k), redis.ttl(k)]));
      return { count: Number(count ?? 0), ttlSeconds: Math.max(0, ttl) };
    },
    async reset(key) {
      await shared(() => redis.del(prefix + key));
    },
  };
}
