import { setTimeout as sleep } from 'node:timers/promises';
import type { Order } from '../orders/index.ts';
import { BACKOFF_MS, later, MAX_ATTEMPTS, type RunContext, toCompensating } from './saga-context.ts';
import { findSaga, finishStep, type Saga, startStep, updateSaga } from './saga-store.ts';
import { FAILURES, failed, outcomeOfError, type StepOutcome } from './step-outcome.ts';
import { type SagaStepDefinition, STEPS, type StepContext } from './steps.ts';
import type { CheckoutTrx } from './tables.ts';

/** An attempt whose start is logged (and its start effect made): what invoke needs. */
export type Started = { step: { id: string; attempt: number }; c: StepContext; signal: AbortSignal };

/** Where a forward step left the saga; `next`: the following step's attempt, already started. */
export type ForwardResult = { saga: Saga; next?: Started } | 'stop' | 'paused';

/** In trx, with the saga row locked: logs an attempt's start, makes its start effect, sets its deadline. */
async function begin(
  r: RunContext,
  trx: CheckoutTrx,
  saga: Saga,
  def: SagaStepDefinition,
  known?: Order,
): Promise<Started> {
  const signal = AbortSignal.timeout(r.timeoutMs);
  const c = await r.contextOf(trx, saga, signal, known);
  const step = await startStep(trx, saga, def.name, 'invoke');
  c.order = (await def.started?.(trx, c)) ?? c.order;
  const next = await updateSaga(trx, saga.id, {
    deadlineAt: later(r.timeoutMs),
    leaseUntil: later(r.leaseMs),
  });
  return { step, c: { ...c, saga: next }, signal };
}

const errorOf = (outcome: StepOutcome) =>
  outcome.ok ? { code: 'OK', message: '' } : { code: outcome.failure.code, message: outcome.failure.message };

/**
 * Runs one forward step to its outcome, retrying what may heal. A success is logged with the
 * step's effect on the order and, in that same transaction, the next step's start (one
 * transaction between two steps). A step found in flight past its deadline (its runner died mid-
 * call, or the provider never answered) timed out: what it did is unknown, so it is undone.
 */
export async function forward(
  r: RunContext,
  saga: Saga,
  def: SagaStepDefinition,
  prestarted?: Started,
  known?: Order,
): Promise<ForwardResult> {
  if (!prestarted && saga.deadlineAt && saga.deadlineAt.getTime() <= Date.now()) {
    const outcome = failed('timeout', `step ${def.name} did not finish before its deadline`);
    return {
      saga: await r.tx(saga.tenantId, async (trx) => {
        const inFlight = await trx
          .selectFrom('checkout.saga_steps')
          .select('id')
          .where('saga_id', '=', saga.id)
          .where('step', '=', def.name)
          .where('action', '=', 'invoke')
          .where('status', '=', 'started')
          .execute();
        for (const row of inFlight)
          await finishStep(trx, row.id, { status: 'failed', error: errorOf(outcome) });
        return toCompensating(trx, saga, {
          reason: 'timeout',
          code: FAILURES.timeout,
          message: errorOf(outcome).message,
        });
      }),
    };
  }
  for (let attempt = 1; ; attempt++) {
    const started =
      prestarted ??
      (await r.tx(saga.tenantId, async (trx) => {
        const current = await findSaga(trx, { id: saga.id }, true);
        if (current?.status !== 'running' || current.step !== def.name) return undefined;
        return begin(r, trx, current, def, attempt === 1 ? known : undefined);
      }));
    prestarted = undefined;
    if (!started) return 'stop';
    const outcome: StepOutcome = await def
      .invoke(started.c)
      .catch((error) => outcomeOfError(error, started.signal));
    const after = await r.tx(saga.tenantId, async (trx): Promise<ForwardResult | undefined> => {
      if (outcome.ok) {
        await finishStep(trx, started.step.id, { status: 'succeeded', output: outcome.output });
        if (outcome.pending) {
          // The provider settles it later (webhook → payment event → a run); the deadline stands.
          return { saga: await updateSaga(trx, saga.id, { leaseOwner: null, leaseUntil: null }) };
        }
        const order = (await def.invoked?.(trx, started.c, outcome.output)) ?? started.c.order;
        const next = STEPS[STEPS.indexOf(def) + 1];
        if (!next) {
          return {
            saga: await updateSaga(trx, saga.id, {
              status: 'completed',
              deadlineAt: null,
              payment: null,
              finishedAt: new Date(),
              leaseOwner: null,
              leaseUntil: null,
            }),
          };
        }
        const moved = await updateSaga(trx, saga.id, { step: next.name, deadlineAt: null });
        if (r.pauseAfter === def.name) return 'paused';
        // A cancel asked meanwhile is seen before the next step starts.
        if (moved.cancelRequested) return { saga: moved };
        const nextStarted = await begin(r, trx, moved, next, order);
        return { saga: nextStarted.c.saga, next: nextStarted };
      }
      await finishStep(trx, started.step.id, { status: 'failed', error: errorOf(outcome) });
      if (outcome.retryable && attempt < MAX_ATTEMPTS && !started.signal.aborted) return undefined;
      if (outcome.failure.reason in FAILURES)
        return { saga: await toCompensating(trx, saga, outcome.failure) };
      // An internal error past its attempts: the watchdog tries again until the deadline.
      await updateSaga(trx, saga.id, { leaseOwner: null, leaseUntil: null });
      return 'stop';
    });
    if (after === undefined) {
      await sleep(BACKOFF_MS[attempt - 1] ?? 250);
      continue;
    }
    if (after === 'paused') {
      r.logger.warn(
        { sagaId: saga.id, step: def.name },
        'checkout paused after a step (MERCATO_TEST_PAUSE_AFTER_STEP)',
      );
      return after;
    }
    if (outcome.ok && outcome.pending) return 'stop';
    return after;
  }
}
