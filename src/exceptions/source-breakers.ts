import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  type IPolicy,
  retry,
  wrap,
} from 'cockatiel';
import { SourceError } from './source-client.ts';

/** Thrown instead of calling a source whose circuit is open; `retryAfterMs` until a trial call may pass. */
export class SourceUnavailableError extends Error {
  override name = 'SourceUnavailableError';
  readonly retryAfterMs: number;
  constructor(retryAfterMs: number) {
    super('the source is failing: its circuit is open');
    this.retryAfterMs = retryAfterMs;
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
/** Retries of one call after its first attempt. */
const RETRIES = 2;

type Entry = { breaker: CircuitBreakerPolicy; policy: IPolicy; openedAt: number | undefined };

// Only what says the source is struggling counts and is retried: not a 404 or a refused URL.
const transient = handleWhen((error) => error instanceof SourceError && error.transient);

/**
 * One circuit breaker (cockatiel) per tenant and interface type, in this process: calls to a
 * source go through retry (2 more attempts, exponential backoff with jitter) around the breaker,
 * so every attempt counts; `failures` transient failures in a row open it for `halfOpenMs`, then
 * one trial call decides. Each tenant's source fails alone: another tenant's never opens it.
 */
export function createSourceBreakers(options: SourceBreakerOptions) {
  const entries = new Map<string, Entry>();

  function entryOf(tenantId: string, interfaceType: string): Entry {
    const key = `${tenantId}:${interfaceType}`;
    const found = entries.get(key);
    if (found) return found;
    const breaker = circuitBreaker(transient, {
      halfOpenAfter: options.halfOpenMs,
      breaker: new ConsecutiveBreaker(options.failures),
    });
    const retries = retry(transient, {
      maxAttempts: RETRIES,
      backoff: new ExponentialBackoff({ initialDelay: options.retryDelayMs ?? 100, maxDelay: 2000 }),
    });
    const entry: Entry = { breaker, policy: wrap(retries, breaker), openedAt: undefined };
    breaker.onBreak(() => {
      entry.openedAt = Date.now();
    });
    breaker.onReset(() => {
      entry.openedAt = undefined;
    });
    entries.set(key, entry);
    if (entries.size > MAX_BREAKERS) {
      for (const [name, other] of entries) {
        if (entries.size <= MAX_BREAKERS) break;
        if (other.breaker.state === CircuitState.Closed) entries.delete(name);
      }
    }
    return entry;
  }

  /** Milliseconds until the open breaker lets a trial call through; undefined when calls pass now. */
  function openFor(tenantId: string, interfaceType: string): number | undefined {
    const entry = entries.get(`${tenantId}:${interfaceType}`);
    if (!entry || entry.breaker.state !== CircuitState.Open || entry.openedAt === undefined) return undefined;
    const left = entry.openedAt + options.halfOpenMs - Date.now();
    return left > 0 ? left : undefined;
  }

  return {
    openFor,
    /** Runs fn through the source's retries and breaker; an open breaker throws SourceUnavailableError. */
    async run<T>(tenantId: string, interfaceType: string, fn: () => Promise<T>): Promise<T> {
      try {
        return await entryOf(tenantId, interfaceType).policy.execute(fn);
      } catch (error) {
        if (error instanceof BrokenCircuitError) {
          throw new SourceUnavailableError(openFor(tenantId, interfaceType) ?? options.halfOpenMs);
        }
        throw error;
      }
    },
    /** Forgets the breaker (the source was changed or removed: its past failures say nothing now). */
    drop(tenantId: string, interfaceType: string): void {
      entries.delete(`${tenantId}:${interfaceType}`);
    },
  };
}

export type SourceBreakers = ReturnType<typeof createSourceBreakers>;
