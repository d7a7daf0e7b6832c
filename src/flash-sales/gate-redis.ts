import type { Redis } from 'ioredis';
import type { Logger } from '../platform/observability/index.ts';
import { closeRedis, watchOutages } from '../platform/redis-client.ts';
import type {
  AdmitRequest,
  AdmitResult,
  FlashGate,
  GateSnapshot,
  GateState,
  ResetFence,
  UnitsBackFeed,
  UnitsBackListener,
} from './gate.ts';
import { admitOnRedis } from './gate-redis-admit.ts';
import { clientOptions } from './gate-redis-client.ts';
import { GateCommands } from './gate-redis-commands.ts';
import { giveBackOnRedis } from './gate-redis-give-back.ts';
import { snapshotOnRedis } from './gate-redis-snapshot.ts';
import { dropOnRedis, loadOnRedis, resetOnRedis, unwatchOnRedis, watchOnRedis } from './gate-redis-state.ts';
import { UnitsBackSubscription } from './gate-redis-units-back.ts';

/** Options of {@link createRedisGate}. */
export type RedisGateOptions = {
  /** REDIS_URL (a db index in the path is honoured). */
  url: string;
  /** config.redisPrefix. */
  prefix: string;
  /** Where the outage and recovery lines go (once each, not per attempt). */
  logger?: Logger;
  /** How long a command may take before the gate answers 503 (default 150 ms). */
  commandTimeoutMs?: number;
};

/** The Redis gate: a {@link FlashGate} whose units-back notices travel on Redis pub/sub. */
export type RedisFlashGate = FlashGate & UnitsBackFeed;

/**
 * The gate of the production shape: one Lua script per attempt on Redis (one round trip), shared
 * by every process. It has a connection of its own, configured to fail fast: no offline queue, no
 * retry or resend of a command, a short command timeout; so while Redis is unreachable or slow
 * every method rejects with 503 SERVICE_UNAVAILABLE (Retry-After: 1) within the timeout instead
 * of queueing, and nothing can ever admit without Redis. Notices of units coming back arrive on a
 * second connection (a subscriber cannot run commands), opened on the first `onUnitsBack`.
 */
export async function createRedisGate(options: RedisGateOptions): Promise<RedisFlashGate> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(options.url, clientOptions(options.commandTimeoutMs ?? 150));
  watchOutages(redis, options.url, options.logger, {
    down: (where) => `flash-sale gate: cannot reach Redis at ${where}; admission answers 503`,
    back: (where) => `flash-sale gate: Redis at ${where} is back; admission resumes`,
  });
  return new RedisGate(redis, options.prefix);
}

/** The gate's parts put together: commands (gate-redis-commands.ts) and notices (gate-redis-units-back.ts). */
class RedisGate implements RedisFlashGate {
  readonly #commands: GateCommands;
  readonly #unitsBack: UnitsBackSubscription;

  constructor(redis: Redis, prefix: string) {
    this.#commands = new GateCommands(redis, prefix);
    this.#unitsBack = new UnitsBackSubscription(redis, this.#commands.channel);
  }

  get listening(): boolean {
    return this.#unitsBack.listening;
  }

  onUnitsBack(listener: UnitsBackListener): () => void {
    return this.#unitsBack.onUnitsBack(listener);
  }

  admit(r: AdmitRequest): Promise<AdmitResult> {
    return admitOnRedis(this.#commands, r);
  }

  giveBack(campaignId: string, customerId: string, quantity: number, key?: string): Promise<boolean> {
    return giveBackOnRedis(this.#commands, campaignId, customerId, quantity, key);
  }

  release(campaignId: string, customerId: string, quantity: number, key: string): Promise<boolean> {
    return giveBackOnRedis(this.#commands, campaignId, customerId, quantity, key, 'keep');
  }

  load(campaignId: string, state: GateState, ttlSeconds: number): Promise<boolean> {
    return loadOnRedis(this.#commands, campaignId, state, ttlSeconds);
  }

  reset(campaignId: string, state: GateState, ttlSeconds: number, fence?: ResetFence): Promise<boolean> {
    return resetOnRedis(this.#commands, campaignId, state, ttlSeconds, fence);
  }

  watch(campaignId: string): Promise<string | undefined> {
    return watchOnRedis(this.#commands, campaignId);
  }

  unwatch(campaignId: string, token: string): Promise<void> {
    return unwatchOnRedis(this.#commands, campaignId, token);
  }

  snapshot(campaignId: string): Promise<GateSnapshot | undefined> {
    return snapshotOnRedis(this.#commands, campaignId);
  }

  drop(campaignId: string): Promise<void> {
    return dropOnRedis(this.#commands, campaignId);
  }

  async close(): Promise<void> {
    if (this.#commands.closed) return;
    this.#commands.closed = true;
    this.#unitsBack.stop();
    await Promise.all([closeRedis(this.#commands.redis), this.#unitsBack.disconnect()]);
  }
}
