import { type AdmitRequest, type AdmitResult, checkAdmitRequest, dedupeKey } from './gate.ts';
import type { GateCommands } from './gate-redis-commands.ts';
import { parseHeld } from './gate-redis-keys.ts';

/** One attempt on the Redis gate: one script, one round trip (gate-redis.ts). */
export async function admitOnRedis(commands: GateCommands, r: AdmitRequest): Promise<AdmitResult> {
  checkAdmitRequest(r);
  const reply = (await commands.call('admit', () =>
    commands.scripts.admit(
      ...commands.args(r.campaignId),
      dedupeKey(r.customerId, r.key),
      r.customerId,
      r.orderId,
      r.quantity,
      r.limit,
    ),
  )) as [string, unknown?, unknown?];
  switch (reply[0]) {
    case 'admitted':
      return { outcome: 'admitted', orderId: r.orderId, remaining: Number(reply[1]) };
    case 'duplicate':
      return { outcome: 'duplicate', orderId: parseHeld(String(reply[1])).orderId };
    case 'sold_out':
      return { outcome: 'sold_out', remaining: Number(reply[1]), version: String(reply[2]) };
    case 'limit_reached':
      return { outcome: 'limit_reached' };
    default:
      return { outcome: 'not_loaded' };
  }
}
