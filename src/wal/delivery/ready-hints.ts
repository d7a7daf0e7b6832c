/** The longest delay setTimeout takes; a longer one fires at once. */
export const MAX_TIMER_MS = 2_147_483_647;
/** A message due at least this far ahead is not looked for now: a timer wakes the consumer then. */
export const DEFER_FROM_MS = 1_000;

export type ReadyHints = {
  /** A NOTIFY on mercato_wal_ready, with its payload. */
  onNotify(payload: string): void;
  stop(): void;
};

/**
 * What a consumer does with a NOTIFY mercato_wal_ready. Its payload (migration 0043) is the number
 * of milliseconds until the earliest message the notifying statement wrote falls due: 0 for a
 * message due now, which wakes the consumer at once, as does an empty payload (a notifier that
 * says nothing of when: a requeue, a relay, a server of an earlier version).
 *
 * A message due `DEFER_FROM_MS` or more ahead (a checkout's watchdog, a tenant's delayed write)
 * has nothing to lease now: a lease then costs a statement and finds nothing. It
 * arms a timer to its due time instead (the earliest of those announced, if several), which
 * wakes the consumer as its due-time timer would. The hint's milliseconds are counted from when
 * the row was written, so a transaction that commits later only makes the timer early, never late.
 */
export function readyHints(wake: () => void, deferFromMs = DEFER_FROM_MS): ReadyHints {
  let timer: NodeJS.Timeout | undefined;
  let at = Number.POSITIVE_INFINITY;
  return {
    onNotify(payload) {
      const ms = payload === '' ? 0 : Number(payload);
      if (!(ms >= deferFromMs)) return wake();
      const due = Date.now() + ms;
      if (timer && at <= due) return;
      if (timer) clearTimeout(timer);
      at = due;
      // Past a timer's range (a delay of weeks) it fires early: the wake then finds nothing and
      // arms the engine's own due-time timer, as a wake on the NOTIFY did.
      timer = setTimeout(
        () => {
          timer = undefined;
          at = Number.POSITIVE_INFINITY;
          wake();
        },
        Math.min(MAX_TIMER_MS, Math.ceil(ms) + 5),
      );
      timer.unref();
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      at = Number.POSITIVE_INFINITY;
    },
  };
}
