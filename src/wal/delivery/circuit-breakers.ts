import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhenResult,
} from 'cockatiel';
import type { Logger } from '../../platform/observability/index.ts';
import type { HttpTarget, Namespace, Target } from '../namespaces/namespace.ts';
import type { Delivery, TargetResult } from '../targets/target-result.ts';
import { retryDelayMs } from './backoff.ts';

export type CircuitStateName = 'closed' | 'open' | 'half-open';

/** A target's breaker as the namespace API and the metrics show it. */
export type CircuitView = {
  state: CircuitStateName;
  /** When it entered this state (ISO 8601); null while this process has not delivered to it yet. */
  since: string | null;
  /** Failures in a row (retryable outcomes: timeouts, network errors, 408, 429, 5xx). */
  failures: number;
  /** The failure that opened it, while open or half-open. */
  lastError?: string;
};

export type CircuitBreakerOptions = {
  /** Failures in a row that open a target's breaker. (Default: 5) */
  threshold?: number;
  /** How long an open breaker refuses deliveries before one probe may go. (Default: 30000) */
  halfOpenAfterMs?: number;
  logger?: Logger;
};

export type CircuitBreakers = {
  /**
   * Runs one HTTP delivery through its target's breaker. While the breaker is open (or its one
   * half-open probe is in flight) the target is not called: the answer is a retryable failure
   * "circuit open", due again no sooner than the breaker lets a probe through.
   */
  run(
    namespace: Namespace,
    target: HttpTarget,
    delivery: Delivery,
    call: () => Promise<TargetResult>,
  ): Promise<TargetResult>;
  /** The breaker of one target; closed with no failures when it has none yet. */
  view(tenantId: string, namespace: string, target: string): CircuitView;
  /** Every breaker this process holds, for the metrics. */
  list(): { tenantId: string; namespace: string; target: string; view: CircuitView }[];
  /** Drops the breakers of targets that are gone, disabled or moved (given every enabled namespace). */
  retain(namespaces: Namespace[]): void;
};

type Entry = {
  tenantId: string;
  namespace: string;
  target: string;
  url: string;
  policy: CircuitBreakerPolicy;
  since: Date;
  failures: number;
  lastError: string | undefined;
  openedAt: number;
};

const STATE_NAMES: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'open',
};

const isFailure = (result: unknown): boolean => (result as TargetResult).outcome === 'retry';

/**
 * One cockatiel circuit breaker per HTTP target (tenant, namespace, target name; a new URL starts
 * a new breaker), per process: each process learns on its own that an endpoint is down. It opens
 * after `threshold` retryable failures in a row, refuses deliveries for `halfOpenAfterMs`, then lets
 * one delivery through: success closes it, failure opens it again.
 */
export function createCircuitBreakers(options: CircuitBreakerOptions = {}): CircuitBreakers {
  const threshold = options.threshold ?? 5;
  const halfOpenAfterMs = options.halfOpenAfterMs ?? 30_000;
  const entries = new Map<string, Entry>();

  function entryOf(tenantId: string, namespace: string, target: HttpTarget): Entry {
    const key = `${tenantId}\n${namespace}\n${target.name}`;
    const found = entries.get(key);
    if (found && found.url === target.url) return found;
    const policy = circuitBreaker(handleWhenResult(isFailure), {
      halfOpenAfter: halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(threshold),
    });
    const entry: Entry = {
      tenantId,
      namespace,
      target: target.name,
      url: target.url,
      policy,
      since: new Date(),
      failures: 0,
      lastError: undefined,
      openedAt: 0,
    };
    policy.onStateChange((state) => {
      entry.since = new Date();
      if (state === CircuitState.Open) entry.openedAt = Date.now();
    });
    entries.set(key, entry);
    return entry;
  }

  function refused(namespace: Namespace, delivery: Delivery, entry: Entry): TargetResult {
    const reopensInMs = Math.max(0, entry.openedAt + halfOpenAfterMs - Date.now());
    const backoffMs = retryDelayMs(namespace.retry, Math.max(1, delivery.attempt));
    const since = entry.since.toISOString();
    const error = `circuit open since ${since} after ${entry.failures} failures (last: ${entry.lastError ?? 'unknown'}); not attempted`;
    return { outcome: 'retry', error, retryAfterMs: Math.ceil(Math.max(backoffMs, reopensInMs)) };
  }

  function view(entry: Entry): CircuitView {
    const state = STATE_NAMES[entry.policy.state];
    const base = { state, since: entry.since.toISOString(), failures: entry.failures };
    return state === 'closed' || entry.lastError === undefined
      ? base
      : { ...base, lastError: entry.lastError };
  }

  return {
    async run(namespace, target, delivery, call) {
      const entry = entryOf(namespace.tenantId, namespace.name, target);
      // Half-open lets one probe through; the others are refused instead of waiting for it.
      if (entry.policy.state === CircuitState.HalfOpen) return refused(namespace, delivery, entry);
      const before = entry.policy.state;
      let result: TargetResult;
      try {
        result = await entry.policy.execute(call);
      } catch (error) {
        if (error instanceof BrokenCircuitError) return refused(namespace, delivery, entry);
        throw error;
      }
      if (isFailure(result)) {
        entry.failures += 1;
        entry.lastError = 'error' in result ? result.error : undefined;
      } else {
        entry.failures = 0;
        entry.lastError = undefined;
      }
      const after = entry.policy.state as CircuitState;
      if (after !== before && after !== CircuitState.HalfOpen) {
        const { tenantId, namespace: ns, target: name, failures, lastError } = entry;
        const fields = { tenantId, namespace: ns, target: name, failures, error: lastError };
        if (after === CircuitState.Closed) options.logger?.info(fields, 'target circuit closed');
        else options.logger?.warn(fields, 'target circuit open: deliveries to it are not attempted');
      }
      return result;
    },
    view(tenantId, namespace, target) {
      const entry = entries.get(`${tenantId}\n${namespace}\n${target}`);
      return entry ? view(entry) : { state: 'closed', since: null, failures: 0 };
    },
    retain(namespaces) {
      const live = new Set<string>();
      for (const n of namespaces) {
        for (const t of n.targets) {
          if (t.type === 'http' && t.enabled) live.add(`${n.tenantId}\n${n.name}\n${t.name}\n${t.url}`);
        }
      }
      for (const [key, e] of entries) {
        if (!live.has(`${e.tenantId}\n${e.namespace}\n${e.target}\n${e.url}`)) entries.delete(key);
      }
    },
    list() {
      return [...entries.values()].map((e) => ({
        tenantId: e.tenantId,
        namespace: e.namespace,
        target: e.target,
        view: view(e),
      }));
    },
  };
}

/** The value of `mercato_wal_target_circuit_state`: 0 closed, 1 open, 2 half-open. */
export const CIRCUIT_GAUGE_VALUE: Record<CircuitStateName, number> = { closed: 0, open: 1, 'half-open': 2 };

/** A namespace as answered, each HTTP target with `circuit`: its breaker in this process. */
export function withCircuits<V extends { tenantId: string; name: string; targets: Target[] }>(
  circuits: CircuitBreakers | undefined,
  view: V,
): V {
  if (!circuits) return view;
  const targets = view.targets.map((t) =>
    t.type === 'http' ? { ...t, circuit: circuits.view(view.tenantId, view.name, t.name) } : t,
  );
  return { ...view, targets };
}
