import type { Redis } from 'ioredis';
import { type ConsumerState, room, type Slot } from './consumer-state.ts';
import { dispatch } from './cycle.ts';
import { GROUP } from './keys.ts';
import { streamsOf } from './message.ts';

/**
 * Makes the slot's consumer group, with its stream when missing (a namespace not written to yet,
 * Redis lost it), unless the namespace was dropped (`ensure`, retire-scripts.ts): then marks the
 * slot dropped, left out of every read until a reload (no probing).
 */
export async function ensureSlot(state: ConsumerState, slot: Slot) {
  const { keys, ns } = slot;
  const answer = await state.ctx.scripts.ensure(
    keys.stream,
    keys.delayed,
    keys.parked,
    keys.dropped,
    keys.base,
    ns.createdAt,
  );
  slot.dropped = answer === 'dropped';
}

/** The blocking XREADGROUP over every served stream with room, on the consumer's own connection. */
export async function readLoop(state: ConsumerState, reader: Redis) {
  const { ctx, log, keyPrefix } = state;
  while (state.running) {
    const open = [...state.slots.values()].filter((s) => !s.dropped && room(state, s) > 0);
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
      // A group missing (NOGROUP), or a stream deleted under the blocked read (UNBLOCKED): the
      // groups are made again, but for dropped namespaces, left out until the reload.
      if (err instanceof Error && /NOGROUP|UNBLOCKED/.test(err.message)) {
        await Promise.all(open.map((s) => ensureSlot(state, s))).catch(() => {});
        continue;
      }
      // While Redis is away the client logs the outage once; no line per attempt.
      if (reader.status === 'ready') log.warn({ err }, 'XREADGROUP failed');
      await state.idle(500);
    }
  }
}
