import { createRequire } from 'node:module';
import type {
  FastifyRateLimitOptions,
  FastifyRateLimitStore,
  FastifyRateLimitStoreCtor,
} from '@fastify/rate-limit';
import type { Redis } from 'ioredis';
import { type CounterStore, memoryCounterStore } from './counter-store.ts';

// The plugin's own stores (CommonJS, without typings of their own): Redis while it answers, an
// in-process LRU while it does not.
const require = createRequire(import.meta.url);
type Result = { current: number; ttl: number };
type Callback = (error: Error | null, result?: Result) => void;
type PluginStore = FastifyRateLimitStore & {
  read?(key: string, callback: Callback, timeWindow: number, max: number): void;
};
type StoreCtor = new (...args: unknown[]) => PluginStore;
const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as StoreCtor;
const LocalStore = require('@fastify/rate-limit/store/LocalStore.js') as StoreCtor;

/**
 * Counters that live in Redis while it is connected and in this process while it is not (an
 * outage, or Redis unreachable at start): throttles keep holding, per process, instead of
 * failing every request or letting everything through. Counts taken during an outage stay in
 * the process; when Redis is back, counting resumes there. The Redis client logs the outage once.
 */
export function counterStoreWithFallback(
  shared: CounterStore,
  redis: Redis,
  local = memoryCounterStore(),
): CounterStore {
  const pick = async <T>(call: (store: CounterStore) => Promise<T>): Promise<T> => {
    if (redis.status !== 'ready') return call(local);
    try {
      return await call(shared);
    } catch {
      return call(local);
    }
  };
  return {
    increment: (key, windowSeconds) => pick((store) => store.increment(key, windowSeconds)),
    peek: (key) => pick((store) => store.peek(key)),
    reset: (key) => pick((store) => store.reset(key)),
  };
}

/** A @fastify/rate-limit store: Redis (keys under nameSpace) while connected, in-process otherwise. */
export function rateLimitStoreWithFallback(redis: Redis, nameSpace: string): FastifyRateLimitStoreCtor {
  const fallback = (shared: PluginStore, local: PluginStore): PluginStore => {
    const run = (
      method: 'incr' | 'read',
      key: string,
      callback: Callback,
      timeWindow: number,
      max: number,
    ) => {
      const localStore = local[method]?.bind(local);
      const sharedStore = shared[method]?.bind(shared);
      if (!localStore || !sharedStore) return callback(new Error(`rate-limit store has no ${method}`));
      if (redis.status !== 'ready') return localStore(key, callback, timeWindow, max);
      sharedStore(
        key,
        (error, result) => (error ? localStore(key, callback, timeWindow, max) : callback(null, result)),
        timeWindow,
        max,
      );
    };
    return {
      incr: (key, callback, timeWindow, max) => run('incr', key, callback, timeWindow, max),
      read: (key, callback, timeWindow, max) => run('read', key, callback, timeWindow, max),
      child: (routeOptions) => fallback(shared.child(routeOptions), local.child(routeOptions)),
    };
  };
  return class {
    constructor(
      options: FastifyRateLimitOptions & { continueExceeding?: boolean; exponentialBackoff?: boolean },
    ) {
      const continueExceeding = options.continueExceeding ?? false;
      const exponentialBackoff = options.exponentialBackoff ?? false;
      // biome-ignore lint/correctness/noConstructorReturn: the plugin news this class and uses what it returns.
      return fallback(
        new RedisStore(continueExceeding, exponentialBackoff, redis, nameSpace),
        new LocalStore(continueExceeding, exponentialBackoff),
      );
    }
  } as unknown as FastifyRateLimitStoreCtor;
}
