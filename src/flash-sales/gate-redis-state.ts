import { randomUUID } from 'node:crypto';
import { type GateState, gateUnavailable, normaliseState } from './gate.ts';
import type { GateCommands } from './gate-redis-commands.ts';
import { campaignBase, gateKeys } from './gate-redis-keys.ts';

// A campaign's state on the Redis gate (gate-redis.ts): loaded from PostgreSQL, reset by
// reconciliation (reconcile.ts), dropped. It is read in gate-redis-snapshot.ts.

/** How long a state being loaded may sit in its staging keys between two chunks. */
const STAGING_TTL_MS = 60_000;
/** Hash fields written per staging call (bounded so no call blocks Redis for long). */
const STAGING_CHUNK = 1000;

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
): Promise<void> {
  await install(commands, 'reset', campaignId, normaliseState(state, ttlSeconds, Date.now()), ttlSeconds);
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
): Promise<boolean> {
  const staging = `${campaignBase(commands.prefix, campaignId)}:staging:${randomUUID()}`;
  const stagingCustomers = `${staging}:customers`;
  const stagingKeys = `${staging}:keys`;
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
  const reply = await commands.call(mode, () =>
    commands.scripts.commit(
      ...commands.args(campaignId),
      stagingCustomers,
      stagingKeys,
      mode,
      state.remaining,
      ttlSeconds * 1000,
      state.perCustomer.size,
      state.keys.size,
      commands.channel,
      campaignId,
    ),
  );
  const outcome = Number(reply);
  if (outcome === -1)
    throw gateUnavailable(`the staged state of campaign ${campaignId} expired; ${mode} again`);
  return outcome === 1;
}

export async function dropOnRedis(commands: GateCommands, campaignId: string): Promise<void> {
  await commands.call('drop', () =>
    commands.scripts.drop(...commands.args(campaignId), commands.channel, campaignId),
  );
}
