import type { HeldKey } from './gate.ts';

// Where the Redis gate (gate-redis.ts) keeps a campaign, and how it writes what a key holds.

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
  /** Hash: dedupe key (`customerId:key`) → `orderId|admittedAtMs|quantity` (quantity 0: its admission released). */
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

/**
 * A campaign's watch (FlashGate.watch), beside its keys in their slot, only while a reconciliation
 * runs: a hash of field '' → the watch's token, and every dedupe key touched since → '1'. It
 * expires on its own; the campaign's scripts take it as their fifth key.
 */
export const watchKey = (prefix: string, campaignId: string) => `${campaignBase(prefix, campaignId)}:watch`;

export const campaignBase = (prefix: string, campaignId: string) =>
  `${prefix}fs:{${encodeURIComponent(campaignId)}}`;

/** Splits `orderId|atMs|quantity` (the order id is a UUID; the numbers follow its last two `|`). */
export function parseHeld(value: string): HeldKey {
  const parts = value.split('|');
  if (parts.length < 3) return { orderId: value, at: 0, quantity: 1 };
  const quantity = Number(parts.pop());
  const at = Number(parts.pop());
  return { orderId: parts.join('|'), at, quantity };
}
