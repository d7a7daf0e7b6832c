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
 * How long a counter's or rate limit's Redis call may go unanswered before the process counts
 * locally, and how long it then leaves Redis alone. A Redis that took the connection and fell
 * silent kept its status `ready`: every request waited for its rate-limit call until the client's
 * command timeout (5 s) and only then fell back, so the whole API answered 5 s late for as long as
 * Redis was silent. Counting is a throttle, never worth holding a request for.
 */
export const REDIS_FALLBACK_BOUND_MS = 500;
export const REDIS_FALLBACK_PAUSE_MS = 1_000;

/** Whether to ask Redis now (ready, and not paused after a call it left unanswered), and the pause. */
function redisGate(redis: Redis, boundMs: number, pauseMs: number) {
  let pausedUntil = 0;
  return {
    boundMs,
    usable: () => redis.status === 'ready' && Date.now() >= pausedUntil,
    pause: () => {
      pausedUntil = Date.now() + pauseMs;
    },
  };
}
type RedisGate = ReturnType<typeof redisGate>;

/** `call`'s answer, or the local store's when it fails or is unanswered within the gate's bound. */
async function boundedOr<T>(gate: RedisGate, call: () => Promise<T>, local: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const unanswered = new Promise<'unanswered'>((resolve) => {
    // After the poll phase: a reply already read from the socket (the event loop was busy, say)
    // is taken before the call counts as unanswered.
    timer = setTimeout(() => setImmediate(() => resolve('unanswered')), gate.boundMs);
  });
  const asked = call();
  asked.catch(() => {}); // a late failure is nobody's
  try {
    const answer = await Promise.race([asked, unanswered]);
    if (answer !== 'unanswered') return answer as T;
    gate.pause();
  } catch {
    // Redis refused: counted locally.
  } finally {
    clearTimeout(timer);
  }
  return local();
}

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
  gate = redisGate(redis, REDIS_FALLBACK_BOUND_MS, REDIS_FALLBACK_PAUSE_MS),
): CounterStore {
  const pick = async <T>(call: (store: CounterStore) => Promise<T>): Promise<T> => {
    if (!gate.usable()) return call(local);
    return boundedOr(
      gate,
      () => call(shared),
      () => call(local),
    );
  };
  return {
    increment: (key, windowSeconds) => pick((store) => store.increment(key, windowSeconds)),
    peek: (key) => pick((store) => store.peek(key)),
    reset: (key) => pick((store) => store.reset(key)),
  };
}

/** A @fastify/rate-limit store: Redis (keys under nameSpace) while connected, in-process otherwise. */
export function rateLimitStoreWithFallback(redis: Redis, nameSpace: string): FastifyRateLimitStoreCtor {
  const gate = redisGate(redis, REDIS_FALLBACK_BOUND_MS, REDIS_FALLBACK_PAUSE_MS);
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
      if (!gate.usable()) return localStore(key, callback, timeWindow, max);
      const counted = (store: NonNullable<typeof sharedStore>) =>
        new Promise<Result>((resolve, reject) =>
          store(key, (error, result) => (error ? reject(error) : resolve(result!)), timeWindow, max),
        );
      boundedOr(
        gate,
        () => counted(sharedStore),
        () => counted(localStore),
      ).then(
        (result) => callback(null, result),
        (error: Error) => callback(error),
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
