import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import type { CheckoutDeps } from './deps.ts';
import {
  findSaga,
  finishStep,
  listSteps,
  type Saga,
  startStep,
  takeLease,
  updateSaga,
} from './saga-store.ts';
import { FAILURES, failed, outcomeOfError, type StepOutcome } from './step-outcome.ts';
import { type SagaStepDefinition, STEPS, type StepContext } from './steps.ts';
import type { CheckoutTrx, SagaFailure } from './tables.ts';

/** Attempts of one step (or compensation) in one run before the run leaves it to the watchdog. */
export const MAX_ATTEMPTS = 3;
const BACKOFF_MS = [50, 250];

export type RunResult =
  /** The saga stopped where it stands (finished, waiting on the provider, paused or left to the watchdog). */
  | { state: 'stopped'; saga: Saga }
  /** Another runner holds it, or it is finished: nothing was done. */
  | { state: 'busy' };

export type SagaRunner = {
  /** Runs the saga as far as it can go now. */
  run(tenantId: string, sagaId: string): Promise<RunResult>;
  /** Runs it soon in the background (watchdog, payment events, cancel); failures are logged. */
  kick(tenantId: string, sagaId: string, delayMs?: number): void;
  /** Waits for the runs in flight (shutdown). */
  close(): Promise<void>;
};

const isTerminal = (saga: Saga) => saga.status !== 'running' && saga.status !== 'compensating';

/**
 * Drives sagas step by step. A run first takes the saga's lease (one runner at a time, taken over
 * when it expires after a crash); each attempt is logged before its effect and its outcome logged
 * with the order's change in one transaction. A step in flight past its deadline timed out. A
 * failure moves the saga to compensating, which undoes the steps in reverse.
 */
export function createSagaRunner(deps: CheckoutDeps, logger: Logger): SagaRunner {
  const { db } = deps;
  const timeoutMs = deps.ctx.config.checkoutStepTimeoutMs;
  const leaseMs = timeoutMs + 2000;
  const pauseAfter = deps.ctx.config.checkoutPauseAfterStep;
  const runs = new Set<Promise<unknown>>();
  let closing = false;

  const tx = <T>(tenantId: string, fn: (trx: CheckoutTrx) => Promise<T>) =>
    withTenant(db, tenantId, (trx) => fn(trx as CheckoutTrx));
  const later = (ms: number) => new Date(Date.now() + ms);
  const contextOf = async (trx: CheckoutTrx, saga: Saga, signal: AbortSignal): Promise<StepContext> => {
    const order = await deps.orders.get(trx, saga.tenantId, saga.orderId, { lock: true });
    if (!order) throw new Error(`saga ${saga.id}: order ${saga.orderId} is missing`);
    const meta: EventMeta = { correlationId: order.correlationId ?? undefined, causationId: saga.id };
    return { deps, saga, order, signal, meta, actor: `saga:${saga.id}` };
  };

  /** Moves to compensating from the failed step (it is undone too: it may have half happened). */
  const toCompensating = (trx: CheckoutTrx, saga: Saga, failure: SagaFailure) =>
    updateSaga(trx, saga.id, { status: 'compensating', failure, deadlineAt: null });

  /** One forward step: returns the saga after it, or `stop` when the run ends here. */
  async function forward(saga: Saga, def: SagaStepDefinition): Promise<Saga | 'stop' | 'paused'> {
    const log = await tx(saga.tenantId, (trx) => listSteps(trx, saga.id));
    const last = log.filter((s) => s.step === def.name && s.action === 'invoke').at(-1);
    if (last?.status === 'started' && saga.deadlineAt && saga.deadlineAt.getTime() <= Date.now()) {
      // A crash or a provider that never answered: what it did is unknown, so undo it.
      const outcome = failed('timeout', `step ${def.name} did not finish before its deadline`);
      return tx(saga.tenantId, async (trx) => {
        await finishStep(trx, last.id, { status: 'failed', error: errorOf(outcome) });
        return toCompensating(trx, saga, (outcome as { failure: SagaFailure }).failure);
      });
    }
    for (let attempt = 1; ; attempt++) {
      const signal = AbortSignal.timeout(timeoutMs);
      const started = await tx(saga.tenantId, async (trx) => {
        const current = await findSaga(trx, { id: saga.id }, true);
        if (current?.status !== 'running' || current.step !== def.name) return undefined;
        const c = await contextOf(trx, current, signal);
        const step = await startStep(trx, current, def.name, 'invoke');
        await def.started?.(trx, c);
        const next = await updateSaga(trx, saga.id, {
          deadlineAt: later(timeoutMs),
          leaseUntil: later(leaseMs),
        });
        return { step, c: { ...c, saga: next } };
      });
      if (!started) return 'stop';
      const outcome: StepOutcome = await def
        .invoke(started.c)
        .catch((error) => outcomeOfError(error, signal));
      const after = await tx(saga.tenantId, async (trx) => {
        if (outcome.ok) {
          await finishStep(trx, started.step.id, { status: 'succeeded', output: outcome.output });
          if (outcome.pending) {
            // The provider settles it later (webhook → payment event → kick); the deadline stands.
            return updateSaga(trx, saga.id, { leaseOwner: null, leaseUntil: null });
          }
          const c = await contextOf(trx, started.c.saga, signal);
          await def.invoked?.(trx, c, outcome.output);
          const index = STEPS.indexOf(def);
          const next = STEPS[index + 1];
          return updateSaga(
            trx,
            saga.id,
            next
              ? { step: next.name, deadlineAt: null }
              : { status: 'completed', deadlineAt: null, payment: null, finishedAt: new Date() },
          );
        }
        await finishStep(trx, started.step.id, { status: 'failed', error: errorOf(outcome) });
        const again = outcome.retryable && attempt < MAX_ATTEMPTS && !signal.aborted;
        if (again) return undefined;
        if (outcome.failure.reason in FAILURES) return toCompensating(trx, saga, outcome.failure);
        // An internal error past its attempts: the watchdog tries again until the deadline.
        return updateSaga(trx, saga.id, { leaseOwner: null, leaseUntil: null });
      });
      if (after === undefined) {
        await sleep(BACKOFF_MS[attempt - 1] ?? 250);
        continue;
      }
      if (outcome.ok && outcome.pending) return 'stop';
      if (!outcome.ok && after.status === 'running') return 'stop';
      if (outcome.ok && pauseAfter === def.name) {
        logger.warn(
          { sagaId: saga.id, step: def.name },
          'checkout paused after a step (MERCATO_TEST_PAUSE_AFTER_STEP)',
        );
        return 'paused';
      }
      return after;
    }
  }

  /** Undoes the steps from saga.step back to the first; then fails or cancels the order. */
  async function backward(saga: Saga): Promise<Saga | 'stop'> {
    for (let index = STEPS.findIndex((s) => s.name === saga.step); index >= 0; index--) {
      const def = STEPS[index]!;
      for (let attempt = 1; ; attempt++) {
        const signal = AbortSignal.timeout(timeoutMs);
        const started = await tx(saga.tenantId, async (trx) => {
          const current = await findSaga(trx, { id: saga.id }, true);
          if (current?.status !== 'compensating') return undefined;
          const step = await startStep(trx, current, def.name, 'compensate');
          await updateSaga(trx, saga.id, { step: def.name, leaseUntil: later(leaseMs) });
          return { step, c: await contextOf(trx, current, signal) };
        });
        if (!started) return 'stop';
        let output: unknown;
        let error: unknown;
        try {
          output = await def.compensate(started.c);
        } catch (e) {
          error = e;
        }
        const done = await tx(saga.tenantId, async (trx) => {
          if (error === undefined) {
            // Logged as an object (a bare JSON string would read back ambiguously).
            await finishStep(trx, started.step.id, {
              status: 'succeeded',
              output: { result: output ?? null },
            });
            await def.compensated?.(trx, await contextOf(trx, started.c.saga, signal), output);
            return true;
          }
          const message = error instanceof Error ? error.message : String(error);
          await finishStep(trx, started.step.id, {
            status: 'failed',
            error: { code: 'COMPENSATION_FAILED', message },
          });
          return false;
        });
        if (done) break;
        if (attempt >= MAX_ATTEMPTS) {
          // Left to the watchdog, whose retries end in the WAL's dead letters if this never heals.
          logger.error(
            { sagaId: saga.id, step: def.name, err: error },
            'checkout compensation keeps failing',
          );
          await tx(saga.tenantId, (trx) => updateSaga(trx, saga.id, { leaseOwner: null, leaseUntil: null }));
          return 'stop';
        }
        await sleep(BACKOFF_MS[attempt - 1] ?? 250);
      }
    }
    return tx(saga.tenantId, async (trx) => {
      const current = (await findSaga(trx, { id: saga.id }, true))!;
      const c = await contextOf(trx, current, AbortSignal.timeout(timeoutMs));
      const failure = current.failure!;
      const cancelled = failure.reason === 'cancelled';
      if (c.order.status !== (cancelled ? 'cancelled' : 'failed')) {
        await deps.orders.transition(trx, saga.tenantId, saga.orderId, cancelled ? 'cancelled' : 'failed', {
          actor: current.cancelRequested?.actor ?? c.actor,
          ...(cancelled
            ? { reason: failure.message }
            : { failure: { reason: failure.reason as never, message: failure.message } }),
          meta: c.meta,
        });
      }
      return updateSaga(trx, saga.id, {
        status: cancelled ? 'cancelled' : 'failed',
        payment: null,
        deadlineAt: null,
        finishedAt: new Date(),
      });
    });
  }

  /** Every run is tracked, so close() waits for those a request left running in the background. */
  function run(tenantId: string, sagaId: string): Promise<RunResult> {
    const p = runOnce(tenantId, sagaId);
    runs.add(p);
    void p.finally(() => runs.delete(p)).catch(() => {});
    return p;
  }

  async function runOnce(tenantId: string, sagaId: string): Promise<RunResult> {
    const owner = randomUUID();
    const taken = await tx(tenantId, (trx) => takeLease(trx, sagaId, owner, leaseMs));
    if (!taken) return { state: 'busy' };
    let saga: Saga = taken;
    let paused = false;
    try {
      while (!isTerminal(saga)) {
        const current: Saga = saga;
        if (current.status === 'running' && current.cancelRequested) {
          const message = current.cancelRequested.reason;
          saga = await tx(tenantId, (trx) =>
            toCompensating(trx, current, { reason: 'cancelled', code: 'CANCELLED', message }),
          );
          continue;
        }
        const def = STEPS.find((s) => s.name === current.step)!;
        const next = current.status === 'running' ? await forward(current, def) : await backward(current);
        if (next === 'stop' || next === 'paused') {
          // Paused (a test hook): the lease is kept, so only the watchdog resumes it, after it expires.
          paused = next === 'paused';
          break;
        }
        saga = next;
      }
    } finally {
      if (!paused) {
        await tx(tenantId, async (trx) => {
          const current = await findSaga(trx, { id: sagaId }, true);
          if (current?.leaseOwner === owner)
            await updateSaga(trx, sagaId, { leaseOwner: null, leaseUntil: null });
        }).catch((error) => logger.warn({ err: error, sagaId }, 'could not release a checkout lease'));
      }
    }
    const final = await tx(tenantId, (trx) => findSaga(trx, { id: sagaId }));
    return { state: 'stopped', saga: final! };
  }

  return {
    run,
    kick(tenantId, sagaId, delayMs = 0) {
      if (closing) return;
      const p = sleep(delayMs)
        .then(() => (closing ? undefined : run(tenantId, sagaId)))
        .catch((error) => logger.error({ err: error, sagaId }, 'checkout saga run failed'))
        .finally(() => runs.delete(p));
      runs.add(p);
    },
    async close() {
      closing = true;
      await Promise.allSettled([...runs]);
    },
  };
}

function errorOf(outcome: StepOutcome): { code: string; message: string } {
  if (outcome.ok) return { code: 'OK', message: '' };
  return { code: outcome.failure.code, message: outcome.failure.message };
}
