import { type ConsumerState, room } from './consumer-state.ts';
import { dispatch } from './cycle.ts';
import { GROUP } from './keys.ts';
import type { Entry } from './message.ts';
import { ensureSlot } from './read-loop.ts';

/** Takes over (XAUTOCLAIM) entries idle longer than the lease, as much as each namespace has room for. */
async function claimIdle(state: ConsumerState) {
  const { ctx, deps } = state;
  for (const slot of state.slots.values()) {
    const free = room(state, slot);
    if (free <= 0 || slot.dropped || !state.running) continue;
    let reply: [string, Entry[], string[]?];
    try {
      reply = (await ctx.redis.xautoclaim(
        slot.keys.stream,
        GROUP,
        ctx.consumerName,
        deps.leaseMs,
        slot.cursor,
        'COUNT',
        Math.min(free, ctx.batchSize),
      )) as [string, Entry[], string[]?];
    } catch (err) {
      // Its stream is gone (dropped, lost): made again, or the slot found dropped; the others go on.
      if (!(err instanceof Error && err.message.includes('NOGROUP'))) throw err;
      await ensureSlot(state, slot);
      continue;
    }
    slot.cursor = reply[0];
    dispatch(state, slot, reply[1]);
  }
}

/** Starts the claimer of idle entries (every leaseMs/2, 0.1–5 s); answers what clears its timer. */
export function startClaimer(state: ConsumerState): () => void {
  let claimTimer: NodeJS.Timeout | undefined;
  const claimEveryMs = Math.min(5000, Math.max(100, Math.floor(state.deps.leaseMs / 2)));
  function scheduleClaim() {
    if (!state.running) return;
    claimTimer = setTimeout(async () => {
      try {
        await claimIdle(state);
      } catch (err) {
        if (state.ctx.redis.status === 'ready') state.log.warn({ err }, 'XAUTOCLAIM failed');
      }
      scheduleClaim();
    }, claimEveryMs);
  }
  scheduleClaim();
  return () => clearTimeout(claimTimer);
}
