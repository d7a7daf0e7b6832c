import { randomUUID } from 'node:crypto';
import { type GateState, gateUnavailable, normaliseState, type ResetFence } from './gate.ts';
import type { GateCommands } from './gate-redis-commands.ts';
import { campaignBase, gateKeys } from './gate-redis-keys.ts';

// A campaign's state on the Redis gate (gate-redis.ts): loaded from PostgreSQL, reset by
// reconciliation (reconcile.ts), dropped. It is read in gate-redis-snapshot.ts.

/** How long a state being loaded may sit in its staging keys between two chunks. */
const STAGING_TTL_MS = 60_000;
/** Hash fields written per staging call (bounded so no call blocks Redis for long). */
const STAGING_CHUNK = 1000;
/**
 * How long a reconciliation's watch lasts unless its reset or a drop ends it first: past it, the
 * reset is refused (-2) and the next reconciliation tries again. A reconciliation reads the gate
 * and the record in seconds, even for a million buyers.
 */
const WATCH_TTL_MS = 300_000;

export async function loadOnRedis(
  commands: GateCommands,
  campaignId: string,
  state: GateState,
  ttlSeconds: number,
): Promise<boolean> {
  const normalised = normaliseState(state, ttlSeconds, Date.now());
  const loaded = gateKeys(commands.prefix, campaignId).loaded;
  // Cheap early answer for the common race (every process rebuilding at once); the commit
  // script decides atomically anyway.
  if ((await commands.call('load', () => commands.redis.exists(loaded))) === 1) return false;
  return install(commands, 'load', campaignId, normalised, ttlSeconds);
}

export async function resetOnRedis(
  commands: GateCommands,
  campaignId: string,
  state: GateState,
  ttlSeconds: number,
  fence?: ResetFence,
): Promise<boolean> {
  const normalised = normaliseState(state, ttlSeconds, Date.now());
  return install(commands, 'reset', campaignId, normalised, ttlSeconds, fence);
}

/** Starts a reconciliation's watch (FlashGate.watch): its token, or undefined when not loaded. */
export async function watchOnRedis(commands: GateCommands, campaignId: string): Promise<string | undefined> {
  const token = randomUUID();
  const reply = await commands.call('watch', () =>
    commands.scripts.watch(...commands.args(campaignId), token, WATCH_TTL_MS),
  );
  return Number(reply) === 1 ? token : undefined;
}

export async function unwatchOnRedis(
  commands: GateCommands,
  campaignId: string,
  token: string,
): Promise<void> {
  await commands.call('unwatch', () => commands.scripts.unwatch(...commands.args(campaignId), token));
}

/**
 * Writes the state into staging hashes of its own (in the campaign's slot, expiring if this
 * process dies halfway), chunk by chunk, then one script checks they are complete and RENAMEs
 * them into place with the counter and the `loaded` key: admissions see the old state or the
 * new one, never half of one.
 */
async function install(
  commands: GateCommands,
  mode: 'load' | 'reset',
  campaignId: string,
  state: ReturnType<typeof normaliseState>,
  ttlSeconds: number,
  fence?: ResetFence,
): Promise<boolean> {
  const staging = `${campaignBase(commands.prefix, campaignId)}:staging:${randomUUID()}`;
  const stagingCustomers = `${staging}:customers`;
  const stagingKeys = `${staging}:keys`;
  const stagingCarry = `${staging}:carry`;
  const stage = async (key: string, entries: Iterable<[string, string]>) => {
    let chunk: string[] = [];
    const flush = async () => {
      await commands.call(mode, () => commands.scripts.stage(key, STAGING_TTL_MS, ...chunk));
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
  const carry = new Set(fence?.carry);
  await stage(
    stagingCarry,
    [...carry].map((key): [string, string] => [key, '1']),
  );
  const reply = await commands.call(mode, () =>
    commands.scripts.commit(
      ...commands.args(campaignId),
      stagingCustomers,
      stagingKeys,
      stagingCarry,
      mode,
      state.remaining,
      ttlSeconds * 1000,
      state.perCustomer.size,
      state.keys.size,
      commands.channel,
      campaignId,
      fence?.watch ?? '',
      carry.size,
    ),
  );
  const outcome = Number(reply);
  if (outcome === -2) return false;
  if (outcome === -1)
    throw gateUnavailable(`the staged state of campaign ${campaignId} expired; ${mode} again`);
  return outcome === 1;
}

export async function dropOnRedis(commands: GateCommands, campaignId: string): Promise<void> {
  await commands.call('drop', () =>
    commands.scripts.drop(...commands.args(campaignId), commands.channel, campaignId),
  );
}
