import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../platform/observability/index.ts';
import { closeRedis, readyWithin, watchOutages } from '../platform/redis-client.ts';
import {
  type AdmitRequest,
  type AdmitResult,
  checkAdmitRequest,
  checkGiveBack,
  dedupeKey,
  type FlashGate,
  type GateSnapshot,
  type GateState,
  gateUnavailable,
  type HeldKey,
  normaliseState,
  type UnitsBackFeed,
  type UnitsBackListener,
} from './gate.ts';
import { clientOptions, isUnavailable } from './gate-redis-client.ts';
import { defineScripts, type Scripts } from './gate-redis-scripts.ts';

/**
 * The keys of one campaign. They share the hash tag `{<campaignId>}`, so Redis Cluster keeps a
 * campaign's keys in one slot (its scripts touch one slot, as Cluster requires) and spreads
 * campaigns over the shards.
 */
export type GateKeys = {
  /** String: units left. */
  remaining: string;
  /** Hash: customerId → units admitted. */
  customers: string;
  /** Hash: dedupe key (`customerId:key`) → `orderId|admittedAtMs|quantity`. */
  keys: string;
  /** String: the state version; present exactly while the campaign is loaded. */
  loaded: string;
};

/** `<prefix>fs:{<campaignId>}:…`, the campaign id URI-encoded (so no brace can break the tag). */
export function gateKeys(prefix: string, campaignId: string): GateKeys {
  const base = campaignBase(prefix, campaignId);
  return {
    remaining: `${base}:remaining`,
    customers: `${base}:customers`,
    keys: `${base}:keys`,
    loaded: `${base}:loaded`,
  };
}

/** The pub/sub channel that carries units-back notices (message: `<version>|<campaignId>`, version '' when dropped). */
export function unitsBackChannel(prefix: string): string {
  return `${prefix}fs:units-back`;
}

const campaignBase = (prefix: string, campaignId: string) =>
  `${prefix}fs:{${encodeURIComponent(campaignId)}}`;

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

/** How long a state being loaded may sit in its staging keys between two chunks. */
const STAGING_TTL_MS = 60_000;
/** Hash fields written per staging call (bounded so no call blocks Redis for long). */
const STAGING_CHUNK = 1000;
/** How long a call waits for the first connection of a process that just started. */
const FIRST_CONNECT_WAIT_MS = 200;

/** Splits `orderId|atMs|quantity` (the order id is a UUID; the numbers follow its last two `|`). */
function parseHeld(value: string): HeldKey {
  const parts = value.split('|');
  if (parts.length < 3) return { orderId: value, at: 0, quantity: 1 };
  const quantity = Number(parts.pop());
  const at = Number(parts.pop());
  return { orderId: parts.join('|'), at, quantity };
}

/** A flat [field, value, …] reply as pairs. */
function* pairs(flat: unknown): Generator<[string, string]> {
  const list = (flat ?? []) as string[];
  for (let i = 0; i + 1 < list.length; i += 2) yield [String(list[i]), String(list[i + 1])];
}

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

class RedisGate implements RedisFlashGate {
  readonly #redis: Redis;
  readonly #scripts: Scripts;
  readonly #prefix: string;
  readonly #channel: string;
  readonly #listeners = new Set<UnitsBackListener>();
  #subscriber: Redis | undefined;
  #listening = false;
  #closed = false;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#channel = unitsBackChannel(prefix);
    this.#scripts = defineScripts(redis);
  }

  get listening(): boolean {
    return this.#listening;
  }

  onUnitsBack(listener: UnitsBackListener): () => void {
    this.#listeners.add(listener);
    if (!this.#subscriber && !this.#closed) this.#subscribe();
    return () => this.#listeners.delete(listener);
  }

  #notify(campaignId: string | undefined, version?: string): void {
    for (const listener of [...this.#listeners]) listener(campaignId, version);
  }

  /** Subscribes on a connection of its own; every (re)connection subscribes again and tells the listeners to forget what they remember (notices may have been missed meanwhile). */
  #subscribe(): void {
    const subscriber = this.#redis.duplicate({ autoResubscribe: false, commandTimeout: 2000 });
    this.#subscriber = subscriber;
    subscriber.on('error', () => {}); // the command connection logs the outage
    subscriber.on('ready', () => {
      subscriber.subscribe(this.#channel).then(
        () => {
          if (this.#closed) return;
          this.#listening = true;
          this.#notify(undefined);
        },
        // Not subscribed: drop the connection so that the next one subscribes again.
        () => {
          if (!this.#closed) subscriber.disconnect(true);
        },
      );
    });
    subscriber.on('close', () => {
      if (!this.#listening) return;
      this.#listening = false;
      this.#notify(undefined);
    });
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      const bar = message.indexOf('|');
      if (bar >= 0) this.#notify(message.slice(bar + 1), message.slice(0, bar));
    });
  }

  /** Runs a call against Redis, turning "unreachable or too slow" into the gate's 503. */
  #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const unavailable = (err: unknown): never => {
      if (isUnavailable(err)) {
        throw gateUnavailable(`Redis ${what} failed: ${(err as Error).message}`, err);
      }
      throw err;
    };
    // The common case without an extra async frame: it is on every attempt.
    if (this.#redis.status === 'ready') return fn().catch(unavailable);
    return (async () => {
      if (this.#closed) throw gateUnavailable('the gate is closed');
      // A process that just started gets a moment for its first connection; one that lost
      // Redis (reconnecting) answers at once.
      const status = this.#redis.status;
      if (status === 'wait' || status === 'connecting' || status === 'connect') {
        await readyWithin(this.#redis, FIRST_CONNECT_WAIT_MS);
      }
      if (this.#redis.status !== 'ready') {
        throw gateUnavailable(`Redis is not connected (${this.#redis.status}); ${what} refused`);
      }
      return fn().catch(unavailable);
    })();
  }

  #args(campaignId: string): string[] {
    const k = gateKeys(this.#prefix, campaignId);
    return [k.remaining, k.customers, k.keys, k.loaded];
  }

  async admit(r: AdmitRequest): Promise<AdmitResult> {
    checkAdmitRequest(r);
    const reply = (await this.#call('admit', () =>
      this.#scripts.admit(
        ...this.#args(r.campaignId),
        dedupeKey(r.customerId, r.key),
        r.customerId,
        r.orderId,
        r.quantity,
        r.limit,
      ),
    )) as [string, unknown?, unknown?];
    switch (reply[0]) {
      case 'admitted':
        return { outcome: 'admitted', orderId: r.orderId, remaining: Number(reply[1]) };
      case 'duplicate':
        return { outcome: 'duplicate', orderId: parseHeld(String(reply[1])).orderId };
      case 'sold_out':
        return { outcome: 'sold_out', remaining: Number(reply[1]), version: String(reply[2]) };
      case 'limit_reached':
        return { outcome: 'limit_reached' };
      default:
        return { outcome: 'not_loaded' };
    }
  }

  async giveBack(campaignId: string, customerId: string, quantity: number, key?: string): Promise<boolean> {
    checkGiveBack(campaignId, customerId, quantity);
    const dedupe = key === undefined ? '' : dedupeKey(customerId, key);
    const reply = await this.#call('giveBack', () =>
      this.#scripts.giveBack(
        ...this.#args(campaignId),
        customerId,
        quantity,
        dedupe,
        this.#channel,
        campaignId,
      ),
    );
    return Number(reply) === 1;
  }

  async load(campaignId: string, state: GateState, ttlSeconds: number): Promise<boolean> {
    const normalised = normaliseState(state, ttlSeconds, Date.now());
    const loaded = gateKeys(this.#prefix, campaignId).loaded;
    // Cheap early answer for the common race (every process rebuilding at once); the commit
    // script decides atomically anyway.
    if ((await this.#call('load', () => this.#redis.exists(loaded))) === 1) return false;
    return this.#install('load', campaignId, normalised, ttlSeconds);
  }

  async reset(campaignId: string, state: GateState, ttlSeconds: number): Promise<void> {
    await this.#install('reset', campaignId, normaliseState(state, ttlSeconds, Date.now()), ttlSeconds);
  }

  /**
   * Writes the state into staging hashes of its own (in the campaign's slot, expiring if this
   * process dies halfway), chunk by chunk, then one script checks they are complete and RENAMEs
   * them into place with the counter and the `loaded` key: admissions see the old state or the
   * new one, never half of one.
   */
  async #install(
    mode: 'load' | 'reset',
    campaignId: string,
    state: ReturnType<typeof normaliseState>,
    ttlSeconds: number,
  ): Promise<boolean> {
    const staging = `${campaignBase(this.#prefix, campaignId)}:staging:${randomUUID()}`;
    const stagingCustomers = `${staging}:customers`;
    const stagingKeys = `${staging}:keys`;
    const stage = async (key: string, entries: Iterable<[string, string]>) => {
      let chunk: string[] = [];
      const flush = async () => {
        await this.#call(mode, () => this.#scripts.stage(key, STAGING_TTL_MS, ...chunk));
        chunk = [];
      };
      for (const [field, value] of entries) {
        chunk.push(field, value);
        if (chunk.length >= STAGING_CHUNK * 2) await flush();
      }
      if (chunk.length > 0) await flush();
    };
    await stage(
      stagingCustomers,
      [...state.perCustomer].map(([customerId, count]): [string, string] => [customerId, String(count)]),
    );
    await stage(
      stagingKeys,
      [...state.keys].map(([key, held]): [string, string] => [
        key,
        `${held.orderId}|${held.at}|${held.quantity}`,
      ]),
    );
    const reply = await this.#call(mode, () =>
      this.#scripts.commit(
        ...this.#args(campaignId),
        stagingCustomers,
        stagingKeys,
        mode,
        state.remaining,
        ttlSeconds * 1000,
        state.perCustomer.size,
        state.keys.size,
        this.#channel,
        campaignId,
      ),
    );
    const outcome = Number(reply);
    if (outcome === -1)
      throw gateUnavailable(`the staged state of campaign ${campaignId} expired; ${mode} again`);
    return outcome === 1;
  }

  async snapshot(campaignId: string): Promise<GateSnapshot | undefined> {
    const reply = (await this.#call('snapshot', () => this.#scripts.snapshot(...this.#args(campaignId)))) as
      | [string, string, unknown, unknown]
      | null;
    if (!reply) return undefined;
    const [version, remaining, customers, keys] = reply;
    const perCustomer = new Map<string, number>();
    for (const [customerId, count] of pairs(customers)) perCustomer.set(customerId, Number(count));
    const held = new Map<string, HeldKey>();
    for (const [key, value] of pairs(keys)) held.set(key, parseHeld(value));
    return { remaining: Number(remaining), perCustomer, keys: held, version: String(version) };
  }

  async drop(campaignId: string): Promise<void> {
    await this.#call('drop', () => this.#scripts.drop(...this.#args(campaignId), this.#channel, campaignId));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listening = false;
    this.#listeners.clear();
    await Promise.all([closeRedis(this.#redis), this.#subscriber ? closeRedis(this.#subscriber) : undefined]);
  }
}
