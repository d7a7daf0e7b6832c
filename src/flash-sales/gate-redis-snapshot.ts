import type { GateSnapshot, HeldKey } from './gate.ts';
import type { GateCommands } from './gate-redis-commands.ts';
import { gateKeys, parseHeld } from './gate-redis-keys.ts';

// What the Redis gate (gate-redis.ts) holds for a campaign, read for reconciliation (reconcile.ts)
// and the sold-out memory (sold-out-memory.ts).

/**
 * Hash fields asked per HSCAN (its COUNT; a reply may carry a few more, a bucket's worth). A sale
 * holds a field per buyer in `customers` and one per attempt admitted in `keys`, so up to a million
 * of each (units ≤ 1,000,000), more keys once released ones stay. Before, one script read both
 * whole (HGETALL): measured on Redis 7, 100,000 buyers kept every other client (every tenant)
 * waiting up to 0.6 s and the reply took 0.8–1.5 s, past the gate's 150 ms command timeout, so it
 * never arrived and the sold-out memory asked again; 1,000,000 buyers: 4–5 s blocked, 9–11 s.
 */
export const SNAPSHOT_CHUNK = 1000;

/** A flat [field, value, …] reply as pairs. */
function* pairs(flat: unknown): Generator<[string, string]> {
  const list = (flat ?? []) as unknown[];
  for (let i = 0; i + 1 < list.length; i += 2) yield [String(list[i]), String(list[i + 1])];
}

/**
 * The campaign's state read in chunks: its version and units left (one MGET), then each hash by
 * HSCAN with COUNT `SNAPSHOT_CHUNK`, then its version again. HSCAN returns every field present from
 * the start to the end of the scan (a field may come twice: a map keeps one), and a field's value
 * as it was when its chunk was read. While the version stays, no unit came back and nothing was
 * installed; a sale sold out at the start (remaining 0) then admitted nothing either (an admission
 * needs a unit), so its snapshot is exactly the state of that version, which is what the sold-out
 * memory needs. If the version moved during the scan, the snapshot's version is '' (a state no
 * answer names: the memory does not take it); reconciliation reads keys one by one and needs no
 * single instant (it gives back by key, idempotently, and lists the keys of its record missing,
 * which are present throughout). Never a call that blocks Redis for more than a chunk.
 */
export async function snapshotOnRedis(
  commands: GateCommands,
  campaignId: string,
): Promise<GateSnapshot | undefined> {
  const k = gateKeys(commands.prefix, campaignId);
  const [version, remaining] = await commands.call('snapshot', () =>
    commands.redis.mget(k.loaded, k.remaining),
  );
  if (version === null || version === undefined || remaining === null || remaining === undefined) {
    return undefined;
  }
  const perCustomer = new Map<string, number>();
  for await (const [customerId, count] of scan(commands, k.customers))
    perCustomer.set(customerId, Number(count));
  const keys = new Map<string, HeldKey>();
  for await (const [key, value] of scan(commands, k.keys)) keys.set(key, parseHeld(value));
  const after = await commands.call('snapshot', () => commands.redis.get(k.loaded));
  return { remaining: Number(remaining), perCustomer, keys, version: after === version ? version : '' };
}

async function* scan(commands: GateCommands, key: string): AsyncGenerator<[string, string]> {
  let cursor = '0';
  do {
    const [next, flat] = await commands.call('snapshot', () =>
      commands.redis.hscan(key, cursor, 'COUNT', SNAPSHOT_CHUNK),
    );
    cursor = String(next);
    yield* pairs(flat);
  } while (cursor !== '0');
}
