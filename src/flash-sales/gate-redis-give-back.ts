import { checkGiveBack, dedupeKey } from './gate.ts';
import type { GateCommands } from './gate-redis-commands.ts';

/**
 * Units back on the Redis gate; the script publishes the notice (gate-redis-units-back.ts).
 * `drop`: the key goes with them (giveBack: an attempt never recorded); `keep`: it stays holding 0
 * units (release: a recorded admission released, whose retries are its duplicates).
 */
export async function giveBackOnRedis(
  commands: GateCommands,
  campaignId: string,
  customerId: string,
  quantity: number,
  key?: string,
  mode: 'drop' | 'keep' = 'drop',
): Promise<boolean> {
  checkGiveBack(campaignId, customerId, quantity);
  const dedupe = key === undefined ? '' : dedupeKey(customerId, key);
  const reply = await commands.call(mode === 'keep' ? 'release' : 'giveBack', () =>
    commands.scripts.giveBack(
      ...commands.args(campaignId),
      customerId,
      quantity,
      dedupe,
      commands.channel,
      campaignId,
      mode,
    ),
  );
  return Number(reply) === 1;
}
