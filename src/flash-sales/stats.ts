/** Why an attempt was not admitted, as the stats count it. */
export type Rejection =
  | 'sold_out'
  | 'limit_reached'
  | 'not_live'
  | 'rate_limited'
  | 'unavailable'
  | 'invalid'
  | 'duplicate';

const LATENCY_SAMPLES = 4096;
const SECONDS = 60;
/**
 * Campaigns whose counters this process keeps (about 35 KB each, most of it the latency ring):
 * past it, the one answered least recently is dropped, so a store that keeps making sales cannot
 * grow the process without bound.
 */
export const MAX_CAMPAIGNS = 1000;

/** One campaign's counters in this process. */
type CampaignStats = {
  attempts: number;
  admitted: number;
  rejected: Record<string, number>;
  /**
   * SOLD_OUT answers given before the caller's token was verified (sold-out-answer.ts): the token
   * may be forged, so they are counted apart from the attempts, their rejections and latencies.
   */
  unverifiedSoldOut: number;
  /** The last LATENCY_SAMPLES admission answers' latencies (ms), a ring. */
  latencies: Float64Array;
  latencyCount: number;
  /** Admissions per second over the last SECONDS seconds: [second, count] ring. */
  perSecond: Int32Array;
  secondOf: Float64Array;
  /** When it last counted an attempt (ms): the least recent is dropped past MAX_CAMPAIGNS. */
  touchedAt: number;
};

function fresh(): CampaignStats {
  return {
    attempts: 0,
    admitted: 0,
    rejected: {},
    unverifiedSoldOut: 0,
    latencies: new Float64Array(LATENCY_SAMPLES),
    latencyCount: 0,
    perSecond: new Int32Array(SECONDS),
    secondOf: new Float64Array(SECONDS).fill(-1),
    touchedAt: 0,
  };
}

const percentile = (sorted: Float64Array, p: number) =>
  sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

/**
 * The attempt side of FlashSaleStats, counted in this process (no round trip on the hot path):
 * attempts, admissions, rejections by reason (attempts whose token was verified), the sold-out
 * answers given before any token was verified (apart), admissions per second over the last 1, 10 and
 * 60 s, and admission latency p50/p99 over the last 4,096 answers. With several processes each
 * counts its own; the record's side (paid, pending, released, revenue) comes from PostgreSQL.
 */
export function createAttemptStats(now: () => number = Date.now) {
  const campaigns = new Map<string, CampaignStats>();
  const none = fresh();
  const of = (id: string) => {
    const known = campaigns.get(id);
    if (known) return known;
    if (campaigns.size >= MAX_CAMPAIGNS) {
      let oldest: [string, CampaignStats] | undefined;
      for (const entry of campaigns) if (!oldest || entry[1].touchedAt < oldest[1].touchedAt) oldest = entry;
      if (oldest) campaigns.delete(oldest[0]);
    }
    const made = fresh();
    campaigns.set(id, made);
    return made;
  };
  return {
    /** One answered attempt: admitted (with its latency) or rejected for a reason. */
    record(campaignId: string, outcome: 'admitted' | Rejection, latencyMs: number): void {
      const s = of(campaignId);
      s.touchedAt = now();
      s.attempts += 1;
      if (outcome === 'admitted') {
        s.admitted += 1;
        const second = Math.floor(now() / 1000);
        const slot = second % SECONDS;
        if (s.secondOf[slot] !== second) {
          s.secondOf[slot] = second;
          s.perSecond[slot] = 0;
        }
        s.perSecond[slot]! += 1;
      } else {
        s.rejected[outcome] = (s.rejected[outcome] ?? 0) + 1;
      }
      s.latencies[s.latencyCount % LATENCY_SAMPLES] = latencyMs;
      s.latencyCount += 1;
    },
    /**
     * A SOLD_OUT answered before the token was verified: counted apart (it may come from anyone who
     * knows the sale's id), so that forged tokens cannot inflate the attempts.
     */
    recordUnverified(campaignId: string): void {
      of(campaignId).unverifiedSoldOut += 1;
    },
    /** The counters of a campaign as FlashSaleStats shows them. */
    view(campaignId: string) {
      // Read only: a campaign nobody tried here shows zeros and keeps no counters.
      const s = campaigns.get(campaignId) ?? none;
      const second = Math.floor(now() / 1000);
      const rate = (window: number) => {
        let sum = 0;
        // The current second is still filling: the windows are the last `window` whole seconds.
        for (let back = 1; back <= window; back += 1) {
          const at = second - back;
          const slot = ((at % SECONDS) + SECONDS) % SECONDS;
          if (s.secondOf[slot] === at) sum += s.perSecond[slot]!;
        }
        return sum / window;
      };
      const sorted = s.latencies.slice(0, Math.min(s.latencyCount, LATENCY_SAMPLES)).sort();
      return {
        attempts: s.attempts,
        admittedHere: s.admitted,
        rejected: { ...s.rejected },
        unverifiedSoldOut: s.unverifiedSoldOut,
        admissionsPerSecond: { last1s: rate(1), last10s: rate(10), last60s: rate(60) },
        latencyMs: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) },
      };
    },
  };
}

export type AttemptStats = ReturnType<typeof createAttemptStats>;
