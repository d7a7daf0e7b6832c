import type { ConsumerState } from './consumer-state.ts';

/** The delayed sets are polled at least this often (other processes add to them too). */
const MOVE_POLL_MS = 50;
/** Members moved per namespace per mover run. */
const MOVE_LIMIT = 500;

/** Moves due delayed messages of every served namespace into its stream; answers the earliest due time left. */
async function moveDue(state: ConsumerState): Promise<number> {
  let earliest = Number.POSITIVE_INFINITY;
  await Promise.all(
    [...state.slots.values()].map(async (slot) => {
      if (slot.dropped) return;
      const { keys } = slot;
      const [moved, next, dropped] = (await state.ctx.scripts.move(
        keys.stream,
        keys.delayed,
        keys.parked,
        keys.dropped,
        keys.base,
        String(Date.now()),
        String(MOVE_LIMIT),
        slot.ns.createdAt,
      )) as [number, string, string?];
      if (dropped) slot.dropped = true;
      else if (moved >= MOVE_LIMIT) earliest = 0;
      else if (next !== '') earliest = Math.min(earliest, Number(next));
    }),
  );
  return earliest;
}

/**
 * Starts the mover of due delayed messages, its timer armed to the earliest due time (polling at
 * least every MOVE_POLL_MS); answers what clears its timer.
 */
export function startMover(state: ConsumerState): () => void {
  let moveTimer: NodeJS.Timeout | undefined;
  function scheduleMove(delayMs: number) {
    if (!state.running) return;
    moveTimer = setTimeout(async () => {
      let earliest = Number.POSITIVE_INFINITY;
      try {
        earliest = await moveDue(state);
      } catch (err) {
        if (state.ctx.redis.status === 'ready') state.log.warn({ err }, 'moving delayed messages failed');
      }
      scheduleMove(Math.max(1, Math.min(MOVE_POLL_MS, earliest - Date.now())));
    }, delayMs);
  }
  scheduleMove(0);
  return () => clearTimeout(moveTimer);
}
