import type { Redis } from 'ioredis';
import { type ConsumerState, room } from './consumer-state.ts';
import { dispatch } from './cycle.ts';
import { GROUP, type NsKeys } from './keys.ts';
import { streamsOf } from './message.ts';

export async function ensureGroup(redis: Redis, keys: NsKeys) {
  try {
    await redis.xgroup('CREATE', keys.stream, GROUP, '0', 'MKSTREAM');
  } catch (err) {
    if (!(err instanceof Error && err.message.includes('BUSYGROUP'))) throw err;
  }
}

/** The blocking XREADGROUP over every served stream with room, on the consumer's own connection. */
export async function readLoop(state: ConsumerState, reader: Redis) {
  const { ctx, log, keyPrefix } = state;
  while (state.running) {
    const open = [...state.slots.values()].filter((s) => room(state, s) > 0);
    // While Redis is away, wait for it instead of queueing reads a stop would have to wait out.
    if (open.length === 0 || reader.status !== 'ready') {
      await state.idle(ctx.blockMs);
      continue;
    }
    const count = Math.min(ctx.batchSize, Math.max(...open.map((s) => room(state, s))));
    try {
      const reply = await reader.call('XREADGROUP', [
        'GROUP',
        GROUP,
        ctx.consumerName,
        'COUNT',
        count,
        'BLOCK',
        ctx.blockMs,
        'STREAMS',
        ...open.map((s) => s.keys.stream),
        ...open.map(() => '>'),
      ]);
      for (const [stream, entries] of streamsOf(reply)) {
        const slot = state.slots.get(stream.startsWith(keyPrefix) ? stream.slice(keyPrefix.length) : stream);
        if (slot) dispatch(state, slot, entries);
      }
    } catch (err) {
      if (!state.running) break;
      if (err instanceof Error && err.message.includes('NOGROUP')) {
        await Promise.all(open.map((s) => ensureGroup(ctx.redis, s.keys))).catch(() => {});
        continue;
      }
      // While Redis is away the client logs the outage once; no line per attempt.
      if (reader.status === 'ready') log.warn({ err }, 'XREADGROUP failed');
      await state.idle(500);
    }
  }
}
