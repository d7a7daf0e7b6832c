/**
 * Attempts per second per key (a customer, an IP) in this process: a fixed one-second window, no
 * round trip on the hot path. With several processes each counts its own, so the effective limit
 * is the limit times the processes behind the balancer (the README says so); the platform's
 * shared per-credential limit still applies on top.
 */
export function createAttemptLimiter(perSecond: number, now: () => number = Date.now) {
  let second = Math.floor(now() / 1000);
  let counts = new Map<string, number>();
  return {
    /** Counts one attempt of key; the seconds to wait when it is over the limit, else 0. */
    hit(key: string): number {
      const current = Math.floor(now() / 1000);
      if (current !== second) {
        second = current;
        counts = new Map();
      }
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      return n > perSecond ? 1 : 0;
    },
  };
}
