import { AppError } from '../platform/http/index.ts';

/**
 * The flash-sale admission gate: decides each purchase attempt in well under a millisecond
 * (dedupe, per-customer limit, decrement) so that the stampede never reaches PostgreSQL, which
 * stays the record and the final arbiter (it re-checks the count when the admitted orders are
 * group-committed). Two implementations share this interface: `gate-redis.ts` (one Lua script
 * per attempt, every process shares it) and `gate-memory.ts` (the embedded shape's, one process).
 * `sold-out-memory.ts` wraps either so that a sold-out campaign is answered without a round trip.
 * GATE.md describes the design.
 */

/** One purchase attempt. */
export type AdmitRequest = {
  campaignId: string;
  /** Who buys; must not contain `:` (it separates the parts of the dedupe key). */
  customerId: string;
  /** The request's Idempotency-Key. Attempts are deduplicated per customer: see {@link dedupeKey}. */
  key: string;
  /** The order id this attempt would create (a UUIDv7 made by the caller). */
  orderId: string;
  /** Units asked for, 1..limit. */
  quantity: number;
  /** The campaign's per-customer limit (units, over every attempt of the customer). */
  limit: number;
};

/** What the gate decided. Only `admitted` took units. */
export type AdmitResult =
  | { outcome: 'admitted'; orderId: string; remaining: number }
  /** The same customer + key was admitted before: the earlier attempt's order id; nothing taken. */
  | { outcome: 'duplicate'; orderId: string }
  /**
   * Fewer units left than asked for. `remaining` is what is left (0 when the campaign is sold out:
   * only then does the sold-out memory remember it); `version` is the campaign's state version
   * (see {@link GateSnapshot.version}).
   */
  | { outcome: 'sold_out'; remaining: number; version: string }
  /** The customer's admitted units plus this quantity would exceed the limit. */
  | { outcome: 'limit_reached' }
  /** The gate holds no state for the campaign (never loaded, expired, or Redis lost it): rebuild it from PostgreSQL, `load`, then ask again. */
  | { outcome: 'not_loaded' };

/** The outcomes of {@link AdmitResult}. */
export type AdmitOutcome = AdmitResult['outcome'];

/**
 * A campaign's state as PostgreSQL records it, to (re)build the gate from: units left, units held
 * per customer, and the dedupe keys of the attempts admitted, optionally with the time each was
 * admitted (ms epoch; the load time otherwise) and its quantity (1 otherwise; 0 for an admission
 * released, whose key the gate keeps holding nothing: see {@link HeldKey}). One entry per
 * customer and per key.
 */
export type GateState = {
  remaining: number;
  perCustomer: [customerId: string, count: number][];
  keys: [dedupeKey: string, orderId: string, at?: number, quantity?: number][];
};

/**
 * What the gate holds for one admitted dedupe key: its order, when it was admitted (ms epoch), and
 * how many units it holds; 0 once its admission was released ({@link FlashGate.release}): the key
 * then holds no unit and counts against no limit, but a retry under it is still its `duplicate`,
 * answered from what the key produced and never decided anew.
 */
export type HeldKey = { orderId: string; at: number; quantity: number };

/** What a gate holds for a campaign now (reconciliation and stats). */
export type GateSnapshot = {
  remaining: number;
  /** Units admitted per customer (customers with none are absent). */
  perCustomer: Map<string, number>;
  /** Dedupe key → the order admitted under it, when, and its units. */
  keys: Map<string, HeldKey>;
  /**
   * Changes whenever units come back or the state is (re)installed (giveBack, load, reset); not on
   * admissions. While a campaign stays sold out under one version, its keys and counts cannot
   * change (an admission needs units), which is what lets the sold-out memory answer duplicates.
   */
  version: string;
};

/**
 * A reconciliation's reset (see {@link mergeWatched}): installs only while `watch` is still the
 * campaign's watch, the keys it saw and `carry` (the attempts in flight the gate held before the
 * watch began) merged in.
 */
export type ResetFence = { watch: string; carry: string[] };

/** The admission gate. Every method of the Redis gate rejects with 503 SERVICE_UNAVAILABLE while Redis cannot be reached. */
export interface FlashGate {
  /** Decides one attempt: loaded? → dedupe → per-customer limit → enough units → take them. */
  admit(r: AdmitRequest): Promise<AdmitResult>;
  /**
   * Units of an attempt that was never recorded back (its PostgreSQL write failed or was refused,
   * or reconciliation found it leaked): remaining += quantity, the customer's count -= quantity,
   * and the dedupe key dropped when given, so a retry under it is a new attempt. With a key it is
   * idempotent: it gives back only while the key holds units, so a retry (or a key that a reset
   * already removed, or a released one: see `release`) changes nothing. Without a key every call
   * gives back. Resolves true when units went back; false when the key held none or the campaign
   * is not loaded. Wakes the sold-out memory of every process.
   */
  giveBack(campaignId: string, customerId: string, quantity: number, key?: string): Promise<boolean>;
  /**
   * Units of a recorded admission that was released (its order failed, was cancelled or its
   * window closed) back: remaining += quantity, the customer's count -= quantity, and the key
   * KEPT, holding 0 units: a retry under it is answered `duplicate` (from the record: the released
   * admission), never decided anew against units and limits it no longer has. Idempotent: it gives
   * back only while the key holds units, so a retry, the late event after the sweep, or a rebuild
   * that already counted the release changes nothing. Resolves true when units went back; false
   * when the key held none or the campaign is not loaded (a rebuild from PostgreSQL counts the
   * release, so record it there first). Wakes the sold-out memory of every process.
   */
  release(campaignId: string, customerId: string, quantity: number, key: string): Promise<boolean>;
  /** Installs state for a campaign unless one is loaded (atomic); resolves whether this call installed it. Wakes the sold-out memory when it did. */
  load(campaignId: string, state: GateState, ttlSeconds: number): Promise<boolean>;
  /**
   * Replaces the state (the reconciliation's repair, the campaign's end). Wakes the sold-out memory.
   * Without a fence it installs `state` whatever is there. With one (a reconciliation's: see
   * {@link ResetFence}) it installs only while the fence's watch is still the campaign's, and
   * merges into `state` what the keys the watch saw (and the fence's `carry`) hold at that instant;
   * resolves false, installing nothing, when the watch was lost.
   */
  reset(campaignId: string, state: GateState, ttlSeconds: number, fence?: ResetFence): Promise<boolean>;
  /**
   * Starts a watch of the campaign (ending any other): from now on every key an admission, a
   * give-back or a release touches is noted, until a reset (or a drop) ends it. Resolves its token;
   * undefined when the campaign is not loaded. Read the gate and the record after it.
   */
  watch(campaignId: string): Promise<string | undefined>;
  /** Ends the watch if `token` is still the campaign's (a reconciliation that repaired nothing). */
  unwatch(campaignId: string, token: string): Promise<void>;
  /** What the gate holds now; undefined when not loaded. */
  snapshot(campaignId: string): Promise<GateSnapshot | undefined>;
  /** Forgets the campaign (admit answers not_loaded after it). */
  drop(campaignId: string): Promise<void>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}

/**
 * Called when a campaign's state changed (units back, loaded, reset, dropped) with the campaign id
 * and the state version it now has ('' when dropped); or with no campaign when notices may have
 * been missed (a lost subscription): forget everything then.
 */
export type UnitsBackListener = (campaignId: string | undefined, version?: string) => void;

/** Where a gate announces that units came back, to every process's sold-out memory. */
export interface UnitsBackFeed {
  /** Calls listener on every notice from now on; returns the function that stops it. */
  onUnitsBack(listener: UnitsBackListener): () => void;
  /** Whether notices arrive now. Sold-out memory is trusted only while this is true. */
  readonly listening: boolean;
}

/**
 * The dedupe scope of an attempt: `${customerId}:${key}`. The same Idempotency-Key from two
 * customers is two attempts; from one customer, one. Customer ids are UUIDs, so the first `:`
 * separates the parts unambiguously (a customer id with a `:` is refused).
 */
export function dedupeKey(customerId: string, key: string): string {
  if (customerId.length === 0 || customerId.includes(':')) {
    throw new RangeError(`customerId must be non-empty without ":", got "${customerId}"`);
  }
  return `${customerId}:${key}`;
}

/** The 503 every gate method answers with when its store cannot be reached: retry in a second. */
export function gateUnavailable(detail: string, cause?: unknown): AppError {
  return new AppError(
    'SERVICE_UNAVAILABLE',
    `the flash-sale gate is unavailable: ${detail}`,
    { retryAfterSeconds: 1 },
    { cause },
  );
}

const positiveInteger = (n: number) => Number.isSafeInteger(n) && n >= 1;

/** Throws RangeError when an attempt is malformed (a caller bug: the route validates its input first). */
export function checkAdmitRequest(r: AdmitRequest): void {
  if (!r.campaignId) throw new RangeError('campaignId is required');
  if (!r.orderId) throw new RangeError('orderId is required');
  if (!positiveInteger(r.quantity))
    throw new RangeError(`quantity must be an integer >= 1, got ${r.quantity}`);
  if (!positiveInteger(r.limit)) throw new RangeError(`limit must be an integer >= 1, got ${r.limit}`);
  dedupeKey(r.customerId, r.key);
}

/** Throws RangeError when a giveBack is malformed. */
export function checkGiveBack(campaignId: string, customerId: string, quantity: number): void {
  if (!campaignId) throw new RangeError('campaignId is required');
  if (!positiveInteger(quantity)) throw new RangeError(`quantity must be an integer >= 1, got ${quantity}`);
  dedupeKey(customerId, '');
}

/** A {@link GateState} checked and indexed (duplicates refused, zero counts dropped). */
export type NormalisedState = {
  remaining: number;
  perCustomer: Map<string, number>;
  keys: Map<string, HeldKey>;
};

/** Checks a state and its TTL (RangeError when malformed); keys without a time get `now`. */
export function normaliseState(state: GateState, ttlSeconds: number, now: number): NormalisedState {
  if (!positiveInteger(ttlSeconds))
    throw new RangeError(`ttlSeconds must be an integer >= 1, got ${ttlSeconds}`);
  if (!Number.isSafeInteger(state.remaining) || state.remaining < 0) {
    throw new RangeError(`remaining must be an integer >= 0, got ${state.remaining}`);
  }
  const perCustomer = new Map<string, number>();
  for (const [customerId, count] of state.perCustomer) {
    dedupeKey(customerId, '');
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new RangeError(`count of customer ${customerId} must be an integer >= 0, got ${count}`);
    }
    if (perCustomer.has(customerId))
      throw new RangeError(`customer ${customerId} appears twice in the state`);
    if (count > 0) perCustomer.set(customerId, count);
  }
  const keys = new Map<string, HeldKey>();
  for (const [key, orderId, at, quantity] of state.keys) {
    if (!key.includes(':')) throw new RangeError(`"${key}" is not a dedupe key (customerId:key)`);
    if (!orderId) throw new RangeError(`dedupe key ${key} has no order id`);
    if (quantity !== undefined && !(Number.isSafeInteger(quantity) && quantity >= 0)) {
      throw new RangeError(`quantity of dedupe key ${key} must be an integer >= 0, got ${quantity}`);
    }
    if (keys.has(key)) throw new RangeError(`dedupe key ${key} appears twice in the state`);
    keys.set(key, { orderId, at: at ?? now, quantity: quantity ?? 1 });
  }
  return { remaining: state.remaining, perCustomer, keys };
}

/**
 * The merge of a fenced reset, one key at a time: `state` is the record as a reconciliation read
 * it; `live` what the gate holds for a key the watch saw (an admission, a give-back or a release
 * made while the reconciliation ran, or an attempt in flight before it began). A key the record
 * lacks that the gate holds with units is an attempt in flight: it is carried over, its units
 * taken from `remaining` and counted for its customer (so it is neither lost, which would let its
 * retry be admitted again or its customer pass the limit, nor counted twice: a key the record has
 * is the record's). A key the record holds whose same admission the gate has released since (0
 * units, the same order) is released. Anything else stays as the record has it. The Redis gate's
 * commit script (gate-redis-scripts.ts, COMMIT) applies the same rule inside Redis; `remaining`
 * may go below 0 when the gate holds attempts in flight the record will refuse: their give-backs
 * bring it back.
 */
export function mergeWatched(state: NormalisedState, key: string, live: HeldKey | undefined): void {
  if (!live) return;
  const staged = state.keys.get(key);
  const customerId = key.slice(0, key.indexOf(':'));
  let delta = 0;
  if (!staged) {
    if (live.quantity === 0) return;
    state.keys.set(key, { ...live });
    delta = live.quantity;
  } else if (live.quantity === 0 && staged.quantity > 0 && staged.orderId === live.orderId) {
    delta = -staged.quantity;
    state.keys.set(key, { ...live });
  } else return;
  const count = (state.perCustomer.get(customerId) ?? 0) + delta;
  if (count > 0) state.perCustomer.set(customerId, count);
  else state.perCustomer.delete(customerId);
  state.remaining -= delta;
}
