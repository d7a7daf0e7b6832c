import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel';
import { AppError } from '../platform/http/index.ts';

export type BreakerName = 'database' | 'payments';
export type BreakerState = 'closed' | 'open' | 'half-open';

const NAMES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'open',
};

/**
 * The sale's two circuit breakers (cockatiel), per process: `database` around the admission
 * batches and the payment queue's transactions, `payments` around the checkout sagas the queue
 * runs (a provider error or timeout counts as a failure). Five failures in a row open one for two
 * seconds: admissions then answer 503 at once instead of piling onto a struggling database, and
 * paid orders wait in the queue instead of hammering a failing provider.
 */
export function createBreakers(options: { threshold?: number; halfOpenAfterMs?: number } = {}) {
  // A refusal (a 4xx, such as a saga that cannot start) is an answer, not the service struggling.
  const failures = handleWhen((error) => !(error instanceof AppError && error.status < 500));
  const make = (failed?: (result: unknown) => boolean) =>
    circuitBreaker(failed ? failures.orWhenResult(failed) : failures, {
      halfOpenAfter: options.halfOpenAfterMs ?? 2000,
      breaker: new ConsecutiveBreaker(options.threshold ?? 5),
    });
  const database = make();
  const payments = make((r) => {
    const reason = (r as { failure?: { reason?: string } } | undefined)?.failure?.reason;
    return reason === 'payment_error' || reason === 'timeout';
  });
  const policies = { database, payments };
  return {
    /** Runs fn through the breaker; an open one answers 503 SERVICE_UNAVAILABLE without calling it. */
    async run<T>(name: BreakerName, fn: () => Promise<T>): Promise<T> {
      try {
        return await policies[name].execute(fn);
      } catch (error) {
        if (error instanceof BrokenCircuitError) {
          throw new AppError('SERVICE_UNAVAILABLE', `the ${name} is struggling; try again shortly`, {
            retryAfterSeconds: 2,
          });
        }
        throw error;
      }
    },
    state: (name: BreakerName): BreakerState => NAMES[policies[name].state],
  };
}

export type Breakers = ReturnType<typeof createBreakers>;
