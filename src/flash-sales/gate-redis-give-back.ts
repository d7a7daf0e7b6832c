import { checkGiveBack, dedupeKey } from './gate.ts';
import type { GateCommands } from './gate-redis-commands.ts';

/** Units back on the Redis gate; the script publishes the notice (gate-redis-units-back.ts). */
export async function giveBackOnRedis(
  commands: GateCommands,
  campaignId: string,
  customerId: string,
  quantity: number,
  key?: string,
): Promise<boolean> {
  checkGiveBack(campaignId, customerId, quantity);
  const dedupe = key === undefined ? '' : dedupeKey(customerId, key);
  const reply = await commands.call('giveBack', () =>
    commands.scripts.giveBack(
      ...commands.args(campaignId),
      customerId,
      quantity,
      dedupe,
      commands.channel,
      campaignId,
    ),
  );
  return Number(reply) === 1;
}
