import {
  type AdmitRequest,
  type AdmitResult,
  checkAdmitRequest,
  checkGiveBack,
  dedupeKey,
  type FlashGate,
  type GateSnapshot,
  type GateState,
  type HeldKey,
  mergeWatched,
  normaliseState,
  type ResetFence,
  type UnitsBackFeed,
  type UnitsBackListener,
} from './gate.ts';

/** Options of {@link createMemoryGate}. */
export type MemoryGateOptions = {
  /** The clock (ms epoch) for admission times and state expiry; tests move it. */
  now?: () => number;
};

/** The in-process gate: a {@link FlashGate} whose units-back notices stay in the process. */
export type MemoryFlashGate = FlashGate & UnitsBackFeed;

type Campaign = {
  remaining: number;
  perCustomer: Map<string, number>;
  keys: Map<string, HeldKey>;
  version: string;
  expiresAt: number;
  /** A reconciliation's watch: its token and the keys touched since it began. */
  watch?: { token: string; touched: Set<string> };
};

/**
 * The embedded shape's gate (one process): the same decisions as the Redis gate, taken
 * synchronously inside each method, so concurrent attempts are serialised by the event loop and
 * can never oversell. State lives in the process (lost with it: the caller rebuilds from
 * PostgreSQL on `not_loaded`) and expires after the TTL it was loaded with, like the Redis keys.
 */
export function createMemoryGate(options: MemoryGateOptions = {}): MemoryFlashGate {
  const now = options.now ?? Date.now;
  const campaigns = new Map<string, Campaign>();
  const listeners = new Set<UnitsBackListener>();
  let versions = 0;
  let watches = 0;

  const live = (campaignId: string): Campaign | undefined => {
    const campaign = campaigns.get(campaignId);
    if (campaign && campaign.expiresAt <= now()) {
      campaigns.delete(campaignId);
      return undefined;
    }
    return campaign;
  };
  const announce = (campaignId: string, version: string) => {
    for (const listener of [...listeners]) listener(campaignId, version);
  };
  const unitsBack = (campaignId: string, campaign: Campaign, customerId: string, quantity: number) => {
    const count = (campaign.perCustomer.get(customerId) ?? 0) - quantity;
    if (count > 0) campaign.perCustomer.set(customerId, count);
    else campaign.perCustomer.delete(customerId);
    campaign.remaining += quantity;
    campaign.version = String(++versions);
    announce(campaignId, campaign.version);
  };
  const touch = (campaign: Campaign, key: string) => campaign.watch?.touched.add(key);
  const install = (campaignId: string, state: GateState, ttlSeconds: number, fence?: ResetFence) => {
    const at = now();
    const normalised = normaliseState(state, ttlSeconds, at);
    if (fence) {
      const current = live(campaignId);
      if (!current?.watch || current.watch.token !== fence.watch) return false;
      for (const key of [...current.watch.touched, ...fence.carry]) {
        mergeWatched(normalised, key, current.keys.get(key));
      }
    }
    const version = String(++versions);
    campaigns.set(campaignId, { ...normalised, version, expiresAt: at + ttlSeconds * 1000 });
    announce(campaignId, version);
    return true;
  };

  return {
    get listening() {
      return true;
    },
    onUnitsBack(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async admit(r: AdmitRequest): Promise<AdmitResult> {
      checkAdmitRequest(r);
      const campaign = live(r.campaignId);
      if (!campaign) return { outcome: 'not_loaded' };
      const dedupe = dedupeKey(r.customerId, r.key);
      const prior = campaign.keys.get(dedupe);
      if (prior) return { outcome: 'duplicate', orderId: prior.orderId };
      const count = campaign.perCustomer.get(r.customerId) ?? 0;
      if (count + r.quantity > r.limit) return { outcome: 'limit_reached' };
      if (campaign.remaining < r.quantity) {
        return { outcome: 'sold_out', remaining: campaign.remaining, version: campaign.version };
      }
      campaign.remaining -= r.quantity;
      campaign.perCustomer.set(r.customerId, count + r.quantity);
      campaign.keys.set(dedupe, { orderId: r.orderId, at: now(), quantity: r.quantity });
      touch(campaign, dedupe);
      return { outcome: 'admitted', orderId: r.orderId, remaining: campaign.remaining };
    },

    async giveBack(campaignId, customerId, quantity, key) {
      checkGiveBack(campaignId, customerId, quantity);
      const campaign = live(campaignId);
      if (!campaign) return false;
      if (key !== undefined) {
        const dedupe = dedupeKey(customerId, key);
        // A released key holds nothing and stays: it is what the key produced.
        if (!campaign.keys.get(dedupe)?.quantity) return false;
        campaign.keys.delete(dedupe);
        touch(campaign, dedupe);
      }
      unitsBack(campaignId, campaign, customerId, quantity);
      return true;
    },

    async release(campaignId, customerId, quantity, key) {
      checkGiveBack(campaignId, customerId, quantity);
      const campaign = live(campaignId);
      if (!campaign) return false;
      const dedupe = dedupeKey(customerId, key);
      const held = campaign.keys.get(dedupe);
      if (!held?.quantity) return false;
      held.quantity = 0;
      touch(campaign, dedupe);
      unitsBack(campaignId, campaign, customerId, quantity);
      return true;
    },

    async load(campaignId, state, ttlSeconds) {
      if (live(campaignId)) return false;
      install(campaignId, state, ttlSeconds);
      return true;
    },

    async reset(campaignId, state, ttlSeconds, fence) {
      return install(campaignId, state, ttlSeconds, fence);
    },

    async watch(campaignId) {
      const campaign = live(campaignId);
      if (!campaign) return undefined;
      campaign.watch = { token: String(++watches), touched: new Set() };
      return campaign.watch.token;
    },

    async unwatch(campaignId, token) {
      const campaign = live(campaignId);
      if (campaign?.watch?.token === token) campaign.watch = undefined;
    },

    async snapshot(campaignId): Promise<GateSnapshot | undefined> {
      const campaign = live(campaignId);
      if (!campaign) return undefined;
      return {
        remaining: campaign.remaining,
        perCustomer: new Map(campaign.perCustomer),
        keys: new Map([...campaign.keys].map(([k, v]) => [k, { ...v }])),
        version: campaign.version,
      };
    },

    async drop(campaignId) {
      if (campaigns.delete(campaignId)) announce(campaignId, '');
    },

    async close() {
      campaigns.clear();
      listeners.clear();
    },
  };
}
