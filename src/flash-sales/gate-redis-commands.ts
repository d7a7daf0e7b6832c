import type { Redis } from 'ioredis';
import { readyWithin } from '../platform/redis-client.ts';
import { gateUnavailable } from './gate.ts';
import { isUnavailable } from './gate-redis-client.ts';
import { gateKeys, unitsBackChannel, watchKey } from './gate-redis-keys.ts';
import { defineScripts, type Scripts } from './gate-redis-scripts.ts';

// The Redis gate's command connection (gate-redis.ts), shared by its parts: admit, give back and
// the campaign's state (gate-redis-admit.ts, gate-redis-give-back.ts, gate-redis-state.ts).

/** How long a call waits for the first connection of a process that just started. */
const FIRST_CONNECT_WAIT_MS = 200;

export class GateCommands {
  readonly redis: Redis;
  readonly scripts: Scripts;
  readonly prefix: string;
  readonly channel: string;
  closed = false;

  constructor(redis: Redis, prefix: string) {
    this.redis = redis;
    this.prefix = prefix;
    this.channel = unitsBackChannel(prefix);
    this.scripts = defineScripts(redis);
  }

  /** Runs a call against Redis, turning "unreachable or too slow" into the gate's 503. */
  call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const unavailable = (err: unknown): never => {
      if (isUnavailable(err)) {
        throw gateUnavailable(`Redis ${what} failed: ${(err as Error).message}`, err);
      }
      throw err;
    };
    // The common case without an extra async frame: it is on every attempt.
    if (this.redis.status === 'ready') return fn().catch(unavailable);
    return (async () => {
      if (this.closed) throw gateUnavailable('the gate is closed');
      // A process that just started gets a moment for its first connection; one that lost
      // Redis (reconnecting) answers at once.
      const status = this.redis.status;
      if (status === 'wait' || status === 'connecting' || status === 'connect') {
        await readyWithin(this.redis, FIRST_CONNECT_WAIT_MS);
      }
      if (this.redis.status !== 'ready') {
        throw gateUnavailable(`Redis is not connected (${this.redis.status}); ${what} refused`);
      }
      return fn().catch(unavailable);
    })();
  }

  args(campaignId: string): string[] {
    const k = gateKeys(this.prefix, campaignId);
    return [k.remaining, k.customers, k.keys, k.loaded, watchKey(this.prefix, campaignId)];
  }
}
