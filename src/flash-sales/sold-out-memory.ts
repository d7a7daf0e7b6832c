import {
  type AdmitRequest,
  type AdmitResult,
  checkAdmitRequest,
  dedupeKey,
  type FlashGate,
  type GateSnapshot,
  type GateState,
  type ResetFence,
  type UnitsBackFeed,
} from './gate.ts';

/** How long a process answers "sold out" from memory before asking the gate again (default). */
export const FORGET_SOLD_OUT_AFTER_MS = 1000;

/**
 * Campaigns whose notices a process counts at most. A notice of every campaign changed anywhere
 * (each sale's end, cancel or change drops its gate state; every give-back) came to every process
 * and was counted for the life of the process: a store creating and cancelling sales in a loop
 * grew every process by an entry each. Past the bound the counts start afresh.
 */
export const MAX_NOTICED = 10_000;

/** Options of {@link withSoldOutMemory}. */
export type SoldOutMemoryOptions = {
  /**
   * How long a sold-out answer is remembered without any notice (default 1 s). The bound that
   * keeps a missed units-back notice from leaving a campaign sold out for ever: at worst a unit
   * that came back waits this long in a process that missed the notice.
   */
  forgetAfterMs?: number;
  /** The clock (ms); tests move it. */
  now?: () => number;
};

/** A gate with sold-out memory: {@link FlashGate} plus what the memory holds, for stats and tests. */
export type SoldOutMemoryGate = FlashGate & {
  /** Whether attempts on the campaign are now answered from memory, without asking the gate. */
  remembersSoldOut(campaignId: string): boolean;
  /**
   * What memory answers, synchronously, for an attempt of one unit by this customer and key under
   * the per-customer limit: the refusal, or undefined when memory does not answer the campaign or
   * the key was admitted (a replay, which must find its order).
   */
  refusalFor(
    campaignId: string,
    customerId: string,
    key: string,
    limit: number,
  ): 'sold_out' | 'limit_reached' | undefined;
  /**
   * Whether memory refuses this attempt (the sale is sold out and the key is no replay), so that
   * SOLD_OUT (true whatever the customer holds) may answer it before the token is verified.
   */
  soldOutFor(campaignId: string, customerId: string, key: string, limit: number): boolean;
  /** Campaigns whose notices it counts now (at most MAX_NOTICED). */
  noticed(): number;
};

/** What the gate held when the campaign sold out: enough to answer every attempt as the gate would. */
type View = { perCustomer: Map<string, number>; orders: Map<string, string> };

type Entry = {
  /** The state version the gate answered sold out under. */
  version: string;
  /** Until when (ms) the memory answers for the gate. */
  until: number;
  /** The admitted keys and counts at that version; undefined until fetched. */
  view?: View;
  fetching?: boolean;
};

/**
 * Wraps a gate so that a campaign it answered sold out (0 units left) is answered from process
 * memory, with no round trip, until units come back:
 *
 * - The gate's units-back feed (Redis pub/sub `<prefix>fs:units-back` for the Redis gate,
 *   in-process for the memory gate) clears a campaign when any process gives units back, loads or
 *   resets it, or drops it; this wrapper's own giveBack/load/reset/drop clear it at once.
 * - A remembered campaign is forgotten after `forgetAfterMs` (1 s) whatever happens, and
 *   everything is forgotten whenever the feed is not listening (a lost subscription may have
 *   missed notices): the next attempt asks the gate, which remembers again if still sold out.
 * - Memory answers exactly as the gate would: when the campaign sold out it fetches the gate's
 *   snapshot once (keys and per-customer counts cannot change while it stays sold out under one
 *   version), so a retried attempt still gets `duplicate` with its order id, and a customer at
 *   the limit `limit_reached`. Until the snapshot is in, attempts go to the gate.
 * - Notices carry the state version they announce: a sold-out answer that raced with a notice
 *   (one arrived while the attempt was in flight) is remembered only if it comes from the state
 *   the last notice announced, and a notice of the state already remembered (a process's own
 *   change, heard after the next sold-out answer) changes nothing.
 */
export function withSoldOutMemory(
  gate: FlashGate & UnitsBackFeed,
  options: SoldOutMemoryOptions = {},
): SoldOutMemoryGate {
  const forgetAfterMs = options.forgetAfterMs ?? FORGET_SOLD_OUT_AFTER_MS;
  const now = options.now ?? Date.now;
  const memory = new Map<string, Entry>();
  // Notices heard, per campaign (how many, and the version the last one named) and for all: an
  // answer is remembered only if no notice arrived while its attempt was in flight, or if the
  // last notice named the very state the answer came from.
  const notices = new Map<string, { count: number; version: string | undefined }>();
  let allNotices = 0;
  const stamp = (campaignId: string) => `${allNotices}/${notices.get(campaignId)?.count ?? 0}`;

  const forget = (campaignId: string | undefined, version?: string) => {
    if (campaignId === undefined) {
      allNotices += 1;
      memory.clear();
      notices.clear();
      return;
    }
    if (notices.size >= MAX_NOTICED && !notices.has(campaignId)) {
      // The counts start afresh; `allNotices` moves, so an attempt in flight never takes a fresh
      // count for the one it started under (its sold-out answer is then not remembered: the next is).
      allNotices += 1;
      notices.clear();
    }
    notices.set(campaignId, { count: (notices.get(campaignId)?.count ?? 0) + 1, version });
    // A notice of the state the memory holds (a change heard after its sold-out answer) changes nothing.
    const entry = memory.get(campaignId);
    if (entry && (version === undefined || entry.version !== version)) memory.delete(campaignId);
  };
  const stopListening = gate.onUnitsBack(forget);

  const answering = (campaignId: string): Entry | undefined => {
    const entry = memory.get(campaignId);
    return entry?.view && now() < entry.until && gate.listening ? entry : undefined;
  };

  const fetchView = (campaignId: string, entry: Entry) => {
    if (entry.fetching || entry.view) return;
    entry.fetching = true;
    const accept = (snapshot: GateSnapshot | undefined) => {
      // Gone means a notice of another state arrived meanwhile.
      if (memory.get(campaignId) !== entry) return;
      // Another version means units came back (or a reload) since the answer: keys may differ.
      if (!snapshot || snapshot.version !== entry.version || snapshot.remaining !== 0) {
        memory.delete(campaignId);
        return;
      }
      const orders = new Map<string, string>();
      for (const [key, held] of snapshot.keys) orders.set(key, held.orderId);
      entry.view = { perCustomer: snapshot.perCustomer, orders };
    };
    gate
      .snapshot(campaignId)
      .then(accept, () => {
        if (memory.get(campaignId) === entry) memory.delete(campaignId);
      })
      .finally(() => {
        entry.fetching = false;
      });
  };

  const remember = (campaignId: string, version: string) => {
    let entry = memory.get(campaignId);
    if (!entry || entry.version !== version) {
      entry = { version, until: 0 };
      memory.set(campaignId, entry);
    }
    entry.until = now() + forgetAfterMs;
    fetchView(campaignId, entry);
  };

  /** Runs a change and forgets the campaign after it (whatever its outcome). */
  const changing = async <T>(campaignId: string, change: () => Promise<T>): Promise<T> => {
    try {
      return await change();
    } finally {
      forget(campaignId);
    }
  };

  return {
    remembersSoldOut: (campaignId) => answering(campaignId) !== undefined,
    noticed: () => notices.size,

    refusalFor(campaignId, customerId, key, limit) {
      const view = answering(campaignId)?.view;
      if (!view || customerId.includes(':') || view.orders.has(`${customerId}:${key}`)) return undefined;
      // The gate's order: the limit before the stock.
      return (view.perCustomer.get(customerId) ?? 0) + 1 > limit ? 'limit_reached' : 'sold_out';
    },

    soldOutFor(campaignId, customerId, key, limit) {
      return this.refusalFor(campaignId, customerId, key, limit) !== undefined;
    },

    async admit(r: AdmitRequest): Promise<AdmitResult> {
      const entry = answering(r.campaignId);
      if (entry?.view) {
        checkAdmitRequest(r);
        const orderId = entry.view.orders.get(dedupeKey(r.customerId, r.key));
        if (orderId !== undefined) return { outcome: 'duplicate', orderId };
        if ((entry.view.perCustomer.get(r.customerId) ?? 0) + r.quantity > r.limit) {
          return { outcome: 'limit_reached' };
        }
        return { outcome: 'sold_out', remaining: 0, version: entry.version };
      }
      const before = stamp(r.campaignId);
      const result = await gate.admit(r);
      if (result.outcome === 'sold_out') {
        const current =
          stamp(r.campaignId) === before || notices.get(r.campaignId)?.version === result.version;
        if (result.remaining === 0 && gate.listening && current) {
          remember(r.campaignId, result.version);
        }
      } else if (result.outcome === 'admitted' || result.outcome === 'not_loaded') {
        memory.delete(r.campaignId);
      }
      return result;
    },

    giveBack: (campaignId: string, customerId: string, quantity: number, key?: string) =>
      changing(campaignId, () => gate.giveBack(campaignId, customerId, quantity, key)),
    release: (campaignId: string, customerId: string, quantity: number, key: string) =>
      changing(campaignId, () => gate.release(campaignId, customerId, quantity, key)),
    load: (campaignId: string, state: GateState, ttlSeconds: number) =>
      changing(campaignId, () => gate.load(campaignId, state, ttlSeconds)),
    reset: (campaignId: string, state: GateState, ttlSeconds: number, fence?: ResetFence) =>
      changing(campaignId, () => gate.reset(campaignId, state, ttlSeconds, fence)),
    watch: (campaignId: string) => gate.watch(campaignId),
    unwatch: (campaignId: string, token: string) => gate.unwatch(campaignId, token),
    drop: (campaignId: string) => changing(campaignId, () => gate.drop(campaignId)),
    snapshot: (campaignId: string) => gate.snapshot(campaignId),

    async close() {
      stopListening();
      memory.clear();
      await gate.close();
    },
  };
}
