import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFER_FROM_MS, MAX_TIMER_MS, readyHints } from './ready-hints.ts';

// The database's side (the trigger's payload, an engine that waits for a message due later) is in
// delivery-engine.test.ts.
describe('what a consumer does with a NOTIFY mercato_wal_ready', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Hints on fake timers, with the wake they call. */
  function onFakeTimers() {
    vi.useFakeTimers();
    const wake = vi.fn();
    return { wake, hints: readyHints(wake) };
  }

  it('wakes at once for a message due now, or a notifier that does not say when', () => {
    const wake = vi.fn();
    const hints = readyHints(wake);
    hints.onNotify('');
    hints.onNotify('0');
    hints.onNotify(String(DEFER_FROM_MS - 1));
    hints.onNotify('not a number');
    expect(wake).toHaveBeenCalledTimes(4);
    hints.stop();
  });

  it('wakes at the earliest announced due time for messages due later, not before, and not at a later one', () => {
    const { wake, hints } = onFakeTimers();
    hints.onNotify('5000');
    hints.onNotify('3000');
    hints.onNotify('9000');
    expect(wake).not.toHaveBeenCalled();
    vi.advanceTimersByTime(2_999);
    expect(wake).not.toHaveBeenCalled();
    vi.advanceTimersByTime(10);
    expect(wake).toHaveBeenCalledTimes(1);
    // Once it fired, the engine's own due-time timer covers the later ones; a new hint arms again.
    vi.advanceTimersByTime(10_000);
    expect(wake).toHaveBeenCalledTimes(1);
    hints.onNotify('2000');
    vi.advanceTimersByTime(2_010);
    expect(wake).toHaveBeenCalledTimes(2);
    hints.stop();
  });

  it("wakes early, never late, for a message due past a timer's range", () => {
    const { wake, hints } = onFakeTimers();
    hints.onNotify(String(40 * 24 * 3_600_000));
    vi.advanceTimersByTime(1_000);
    expect(wake).not.toHaveBeenCalled();
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(wake).toHaveBeenCalledTimes(1);
    hints.stop();
  });

  it('arms nothing after stop', () => {
    const { wake, hints } = onFakeTimers();
    hints.onNotify('2000');
    hints.stop();
    vi.advanceTimersByTime(5_000);
    expect(wake).not.toHaveBeenCalled();
  });
});
