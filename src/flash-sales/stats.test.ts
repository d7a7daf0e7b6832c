import { describe, expect, it } from 'vitest';
import { createAttemptStats, MAX_CAMPAIGNS } from './stats.ts';

describe("a process's attempt counters", () => {
  it('keeps those of at most MAX_CAMPAIGNS campaigns, dropping the one answered least recently', () => {
    let clock = 1_000_000;
    const stats = createAttemptStats(() => clock);
    for (let i = 0; i < MAX_CAMPAIGNS; i++) {
      clock += 1;
      stats.record(`sale-${i}`, 'admitted', 1);
    }
    // The first sale is answered again: the second is now the least recent.
    clock += 1;
    stats.record('sale-0', 'sold_out', 0);
    clock += 1;
    stats.record('one-more', 'sold_out', 0);
    expect(stats.view('sale-0')).toMatchObject({ attempts: 2, admittedHere: 1, rejected: { sold_out: 1 } });
    expect(stats.view('sale-1')).toMatchObject({ attempts: 0, admittedHere: 0 });
    expect(stats.view('sale-2').attempts).toBe(1);
    expect(stats.view('one-more').attempts).toBe(1);
  });

  it('keeps nothing for a campaign only read: reading never drops what another counted', () => {
    const stats = createAttemptStats();
    for (let i = 0; i < MAX_CAMPAIGNS; i++) stats.record(`sale-${i}`, 'admitted', 1);
    for (let i = 0; i < 10; i++) {
      expect(stats.view(`read-only-${i}`)).toMatchObject({
        attempts: 0,
        rejected: {},
        latencyMs: { p50: null, p99: null },
      });
    }
    for (let i = 0; i < MAX_CAMPAIGNS; i++) expect(stats.view(`sale-${i}`).attempts).toBe(1);
  });
});
