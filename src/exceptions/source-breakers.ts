import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { SourceError } from './source-client.ts';

/** Thrown instead of calling a source whose circuit is open; `retryAfterMs` until a trial call may pass. */
export class SourceUnavailableError extends Error {
  override name = 'SourceUnavailableError';
  readonly retryAfterMs: number;
  /** Refused because MAX_CALLS_PER_SOURCE calls are under way, not because the source failed. */
  readonly busy: boolean;
  constructor(retryAfterMs: number, busy = false) {
    super(
      busy
        ? 'the source has too many calls under way: try again shortly'
        : 'the source is failing: its circuit is open',
    );
    this.retryAfterMs = retryAfterMs;
    this.busy = busy;
  }
}

export type SourceBreakerOptions = {
  /** Consecutive transient failures that open a breaker. (Default: 5, MERCATO_SOURCE_BREAKER_FAILURES) */
  failures: number;
  /** How long an open breaker refuses calls. (Default: 30 s, MERCATO_SOURCE_BREAKER_HALF_OPEN_MS) */
  halfOpenMs: number;
  /** First retry delay of a call; the next one doubles, with jitter. (Default: 100 ms) */
  retryDelayMs?: number;
};

/** Tenants' breakers kept; past it, closed ones are forgotten, oldest first. */
const MAX_BREAKERS = 10_000;
/**
 * Calls one tenant's source of one interface type may have under way at once in this process
 * (admitted, not yet released): past it a call is refused at once, as while the circuit is open.
 */
export const MAX_CALLS_PER_SOURCE = 16;
/** Retries of one call after its first attempt. */
const RETRIES = 2;
/** What a call refused while another's trial runs is told to wait. */
const TRIAL_RETRY_AFTER_MS = 1000;
/**
 * A trial not ended after this long lost whoever held it (a retry's calls take at most about three
 * minutes: two calls of three attempts of 30 s at most, with backoff): the next call may try.
 */
const TRIAL_LOST_MS = 5 * 60_000;

type Phase =
  | { kind: 'closed'; failures: number }
  | { kind: 'open'; until: number }
  | { kind: 'trial'; permit: SourcePermit; since: number };

type Breaker = { phase: Phase; generation: number };

/**
 * Leave to call a source, taken before the call (a retry takes it before it records its attempt):
 * the breaker's generation that admitted it, and whether it holds the trial of a half-open breaker.
 * Only a permit of the breaker's current generation moves it: a call admitted before the circuit
 * opened says nothing of the source since. A permit's first call goes through whatever happened
 * meanwhile (it was admitted, as a call already under way); its later calls and attempts do not
 * while the circuit is open.
 */
export type SourcePermit = {
  readonly breaker: Breaker;
  /** The tenant and interface type, whose calls under way it counts in. */
  readonly key: string;
  generation: number;
  trial: boolean;
  calls: number;
  released: boolean;
};

// Only what says the source is struggling counts and is retried: not a 404 or a refused URL.
const isTransient = (error: unknown) => error instanceof SourceError && error.transient;

/**
 * One circuit breaker per tenant and interface type, in this process. A call runs through retries
 * (2 more attempts, exponential backoff with jitter: cockatiel) and each attempt through the
 * breaker: `failures` transient failures in a row open it for `halfOpenMs`; then one trial call is
 * admitted, and its outcome alone closes it (any answer but a transient failure) or opens it again.
 * While the trial runs every other call is refused at once, never kept waiting for its outcome, so
 * a refused retry records nothing. Every step is synchronous: calls at once in this process cannot
 * lose a count nor let two trials through. Each tenant's source fails alone.
 */
export function createSourceBreakers(options: SourceBreakerOptions) {
  const breakers = new Map<string, Breaker>();
  // Calls under way per tenant and interface type. Apart from the breakers: drop() (a PUT of the
  // source) forgets a breaker, and must not forget the calls its permits still hold.
  const underWay = new Map<string, number>();
  const retries = retry(handleWhen(isTransient), {
    maxAttempts: RETRIES,
    backoff: new ExponentialBackoff({ initialDelay: options.retryDelayMs ?? 100, maxDelay: 2000 }),
  });

  function breakerOf(tenantId: string, interfaceType: string): Breaker {
    const key = `${tenantId}:${interfaceType}`;
    const found = breakers.get(key);
    if (found) return found;
    const breaker: Breaker = { phase: { kind: 'closed', failures: 0 }, generation: 0 };
    breakers.set(key, breaker);
    if (breakers.size > MAX_BREAKERS) {
      for (const [name, other] of breakers) {
        if (breakers.size <= MAX_BREAKERS) break;
        if (other.phase.kind === 'closed') breakers.delete(name);
      }
    }
    return breaker;
  }

  const moveTo = (breaker: Breaker, phase: Phase) => {
    breaker.phase = phase;
    breaker.generation += 1;
  };

  /** Whether the permit is the one the breaker's state now answers to. */
  const current = (permit: SourcePermit) => {
    const { phase, generation } = permit.breaker;
    if (permit.generation !== generation) return false;
    return permit.trial ? phase.kind === 'trial' && phase.permit === permit : phase.kind === 'closed';
  };

  /** How long a refused call should wait, or undefined when the permit's call may go. */
  function refusal(permit: SourcePermit): number | undefined {
    if (permit.calls === 0 || current(permit)) return undefined;
    const { phase } = permit.breaker;
    if (phase.kind === 'open') return Math.max(phase.until - Date.now(), 0) || TRIAL_RETRY_AFTER_MS;
    return TRIAL_RETRY_AFTER_MS;
  }

  function failed(permit: SourcePermit): void {
    if (!current(permit)) return;
    const { breaker } = permit;
    const { phase } = breaker;
    if (phase.kind === 'closed' && phase.failures + 1 < options.failures) {
      phase.failures += 1;
      return;
    }
    moveTo(breaker, { kind: 'open', until: Date.now() + options.halfOpenMs });
  }

  function answered(permit: SourcePermit): void {
    if (!current(permit)) return;
    const { breaker } = permit;
    if (breaker.phase.kind === 'closed') {
      breaker.phase.failures = 0;
      return;
    }
    // The trial's answer closes it; the rest of the trial's calls go on as any others.
    moveTo(breaker, { kind: 'closed', failures: 0 });
    permit.generation = breaker.generation;
    permit.trial = false;
  }

  async function attempt<T>(permit: SourcePermit, fn: () => Promise<T>): Promise<T> {
    const { breaker } = permit;
    // Closed again since the permit was admitted: its calls count from now on.
    if (breaker.phase.kind === 'closed' && !current(permit)) {
      permit.generation = breaker.generation;
      permit.trial = false;
    }
    const wait = refusal(permit);
    if (wait !== undefined) throw new SourceUnavailableError(wait);
    permit.calls += 1;
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      if (isTransient(error)) failed(permit);
      // Any other answer (a 404, a refused destination) says the source answers: it ends a trial.
      else if (permit.trial) answered(permit);
      throw error;
    }
    answered(permit);
    return result;
  }

  /**
   * Leave to call the source now, or SourceUnavailableError: while the circuit is open, and while
   * another call's trial runs. Once the open period is over, the first caller gets the trial. Give
   * it back with release() once its calls are done (a trial admitted but never made lets the next
   * caller try).
   */
  function admit(tenantId: string, interfaceType: string): SourcePermit {
    const key = `${tenantId}:${interfaceType}`;
    const breaker = breakerOf(tenantId, interfaceType);
    const { phase } = breaker;
    const now = Date.now();
    if (phase.kind === 'open' && phase.until > now) throw new SourceUnavailableError(phase.until - now);
    if (phase.kind === 'trial' && now - phase.since < TRIAL_LOST_MS) {
      throw new SourceUnavailableError(TRIAL_RETRY_AFTER_MS);
    }
    const calls = underWay.get(key) ?? 0;
    if (calls >= MAX_CALLS_PER_SOURCE) throw new SourceUnavailableError(TRIAL_RETRY_AFTER_MS, true);
    underWay.set(key, calls + 1);
    if (phase.kind === 'closed') {
      return { breaker, key, generation: breaker.generation, trial: false, calls: 0, released: false };
    }
    const permit: SourcePermit = { breaker, key, generation: 0, trial: true, calls: 0, released: false };
    moveTo(breaker, { kind: 'trial', permit, since: now });
    permit.generation = breaker.generation;
    return permit;
  }

  function release(permit: SourcePermit): void {
    if (permit.released) return;
    permit.released = true;
    const calls = (underWay.get(permit.key) ?? 1) - 1;
    if (calls > 0) underWay.set(permit.key, calls);
    else underWay.delete(permit.key);
    // A trial that made no call decided nothing: the next caller may try.
    if (current(permit) && permit.trial) moveTo(permit.breaker, { kind: 'open', until: Date.now() });
  }

  return {
    admit,
    release,
    /**
     * Runs fn through the source's retries and breaker, under `permit` (its caller releases it) or
     * one of its own; a refused call throws SourceUnavailableError.
     */
    async run<T>(
      tenantId: string,
      interfaceType: string,
      fn: () => Promise<T>,
      permit?: SourcePermit,
    ): Promise<T> {
      const own = permit ?? admit(tenantId, interfaceType);
      try {
        return await retries.execute(() => attempt(own, fn));
      } finally {
        if (!permit) release(own);
      }
    },
    /** Forgets the breaker (the source was changed or removed: its past failures say nothing now). */
    drop(tenantId: string, interfaceType: string): void {
      breakers.delete(`${tenantId}:${interfaceType}`);
    },
  };
}

export type SourceBreakers = ReturnType<typeof createSourceBreakers>;
