import type { Redis } from 'ioredis';
import type { Logger } from '../../../platform/observability/index.ts';
import type { Namespace } from '../../namespaces/namespace.ts';
import type { StreamConsumerDeps } from '../stream/contract.ts';
import type { NsKeys } from './keys.ts';
import type { Scripts } from './scripts.ts';

export type ConsumerContext = {
  redis: Redis;
  scripts: Scripts;
  prefix: string;
  consumerName: string;
  batchSize: number;
  blockMs: number;
};

/** What the cycle script answers for a decision: applied, fenced off, or its namespace dropped. */
export type CycleResult = 'ok' | 'stale' | 'dropped';

/**
 * Messages held (taken, not yet decided) per namespace, in multiples of its consumerConcurrency,
 * while deliveries take well under the lease; otherwise one multiple.
 */
const PREFETCH = 4;

/**
 * A namespace served: `held` entries read and not decided (at most PREFETCH × consumerConcurrency);
 * finished deliveries' decisions and newly read entries wait for the next cycle call.
 */
export type Slot = {
  ns: Namespace;
  keys: NsKeys;
  held: number;
  /** Taken and waiting for a free delivery slot (the prefetch). */
  ready: Array<[token: string, fields: unknown, history: unknown]>;
  active: number;
  decisions: Array<{ json: string; done: (result: CycleResult) => void; messageId: string }>;
  toTake: string[];
  /** Cycle calls in flight (at most CYCLES_IN_FLIGHT) and the entries they were asked to take or read. */
  cycles: number;
  fetching: number;
  /** Moving average of how long a delivery takes, ms (starts at the lease: slow until shown quick). */
  deliveryMs: number;
  again: boolean;
  cursor: string;
  /**
   * The namespace was dropped here (its drop marker answered: it was deleted, and this consumer
   * has not yet heard): left out of reads, claims, moves and cycles until a reload (ensureSlot).
   */
  dropped: boolean;
};

/**
 * What the parts of one consumer share (startConsumer makes it): the read loop, the cycle calls,
 * the mover of delayed messages and the claimer of idle entries.
 */
export type ConsumerState = {
  ctx: ConsumerContext;
  deps: StreamConsumerDeps;
  log: Logger;
  /** The client's key prefix, which the stream names of an XREADGROUP reply carry. */
  keyPrefix: string;
  /** False once stop() has begun. */
  running: boolean;
  /** The namespaces served, by stream key; replaced whole by each reload. */
  slots: Map<string, Slot>;
  /** Ends the read loop's current idle wait. */
  nudge: () => void;
  idle: (ms: number) => Promise<void>;
  /** Work that stop() waits for. */
  track: (work: Promise<void>) => void;
};

export function newSlot(ns: Namespace, keys: NsKeys, leaseMs: number): Slot {
  return {
    ns,
    keys,
    held: 0,
    ready: [],
    active: 0,
    decisions: [],
    toTake: [],
    cycles: 0,
    fetching: 0,
    deliveryMs: leaseMs,
    again: false,
    cursor: '0-0',
    dropped: false,
  };
}

/**
 * How many messages a namespace may hold: PREFETCH times its concurrency, so the next messages
 * are here while cycle calls run; only while deliveries are quick, as a held message's lease runs.
 */
export const windowOf = (state: ConsumerState, slot: Slot) =>
  (slot.deliveryMs * PREFETCH < state.deps.leaseMs / 4 ? PREFETCH : 1) * slot.ns.consumerConcurrency;
/** How many more it may read now. */
export const room = (state: ConsumerState, slot: Slot) =>
  Math.max(0, windowOf(state, slot) - slot.held - slot.fetching);
