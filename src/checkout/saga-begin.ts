import type { Order } from '../orders/index.ts';
import { together } from '../platform/db/index.ts';
import { later, type RunContext, toCancelCompleted, toCompensate } from './saga-context.ts';
import { type Saga, type SagaLog, updateSagaLogged } from './saga-store.ts';
import type { SagaStepDefinition, StepContext } from './step-definition.ts';
import type { StepOutcome } from './step-outcome.ts';
import { STEPS } from './steps.ts';
import type { CheckoutTrx } from './tables.ts';

/** An attempt of a step that calls out, its start logged (and its start effect made): what invoke needs. */
export type Started = {
  def: SagaStepDefinition;
  step: { id: string; attempt: number };
  c: StepContext;
  signal: AbortSignal;
};

/**
 * Where begin left a saga: a step that calls out, started; the saga as it stands (compensating,
 * finished, or a cancel asked before its next step); or paused by the test hook.
 */
export type Begun = Started | { saga: Saga; order?: Order } | 'paused';

/**
 * In trx, with the saga row locked, at step `def`: runs the step's local effect (a step without
 * invoke is done there and then, logged with its effect, and the saga goes on to the next step in
 * the same transaction); for a step that calls out, logs its attempt's start, makes its start
 * effect and sets its deadline.
 */
export async function begin(
  r: RunContext,
  trx: CheckoutTrx,
  saga: Saga,
  def: SagaStepDefinition,
  known?: Order,
): Promise<Begun> {
  let current = saga;
  let step = def;
  let order = known;
  for (;;) {
    const signal = AbortSignal.timeout(r.timeoutMs);
    const c = await r.contextOf(trx, current, signal, order);
    if (step.local) {
      const outcome = await step.local(trx, c);
      const attempt = { tenantId: current.tenantId, step: step.name, action: 'invoke' as const };
      if (!outcome.ok) {
        const failure = { status: 'failed' as const, error: errorOf(outcome) };
        const { saga: compensating } = await updateSagaLogged(
          trx,
          current.id,
          toCompensate(outcome.failure),
          {
            attempt: { ...attempt, outcome: failure },
          },
        );
        return { saga: compensating };
      }
      if (!step.invoke) {
        const moved = await succeeded(r, trx, current, step, c, outcome.output, {
          attempt: { ...attempt, outcome: { status: 'succeeded', output: outcome.output } },
        });
        if (moved === 'paused' || !moved.next) return moved === 'paused' ? moved : finished(moved);
        ({ saga: current, next: step, order } = moved);
        continue;
      }
    }
    // The attempt's start is logged and its start effect made together (one round trip): the
    // effect reads nothing the log changes (the saga's payment and tenant stand).
    const [{ saga: next, logged }, changed] = await together([
      updateSagaLogged(
        trx,
        current.id,
        { deadlineAt: later(r.timeoutMs), leaseUntil: later(r.leaseMs) },
        { attempt: { tenantId: current.tenantId, step: step.name, action: 'invoke' } },
      ),
      step.started?.(trx, c),
    ]);
    c.saga = next;
    c.order = changed ?? c.order;
    return { def: step, step: logged!, c, signal };
  }
}

/** The saga where a step left it, with its order when the saga finished there. */
export const finished = (moved: { saga: Saga; order: Order }) =>
  moved.saga.status === 'completed' ? { saga: moved.saga, order: moved.order } : { saga: moved.saga };

/**
 * In trx: a step succeeded (logged by the caller). Makes its effect on the order, then finishes
 * the saga or moves it to the next step; `next` unless the saga finished, a cancel was asked or
 * the test hook pauses it there.
 */
export async function succeeded(
  r: RunContext,
  trx: CheckoutTrx,
  saga: Saga,
  def: SagaStepDefinition,
  c: StepContext,
  output: unknown,
  log: SagaLog,
): Promise<{ saga: Saga; next?: SagaStepDefinition; order: Order } | 'paused'> {
  const next = STEPS[STEPS.indexOf(def) + 1];
  // The step's effect on the order and the saga's move are made together (one round trip).
  const [changed, { saga: moved }] = await together([
    def.invoked?.(trx, c, output),
    updateSagaLogged(
      trx,
      saga.id,
      next
        ? { step: next.name, deadlineAt: null }
        : {
            status: 'completed',
            deadlineAt: null,
            payment: null,
            finishedAt: new Date(),
            leaseOwner: null,
            leaseUntil: null,
          },
      log,
    ),
  ]);
  const order = changed ?? c.order;
  if (!next) {
    // A cancel asked while the last step's call was out (answered 202: it will be done): the
    // order completed, so the saga undoes it as a cancel of a completed order does, its runner
    // keeping the lease.
    if (moved.cancelRequested) {
      const { saga: undoing } = await updateSagaLogged(trx, saga.id, {
        ...toCancelCompleted(moved.cancelRequested),
        leaseOwner: saga.leaseOwner,
        leaseUntil: later(r.leaseMs),
      });
      return { saga: undoing, order };
    }
    return { saga: moved, order };
  }
  if (r.pauseAfter === def.name) {
    r.logger.warn(
      { sagaId: saga.id, step: def.name },
      'checkout paused after a step (MERCATO_TEST_PAUSE_AFTER_STEP)',
    );
    return 'paused';
  }
  // A cancel asked meanwhile is seen before the next step starts.
  if (moved.cancelRequested) return { saga: moved, order };
  return { saga: moved, next, order };
}

export const errorOf = (outcome: StepOutcome) =>
  outcome.ok ? { code: 'OK', message: '' } : { code: outcome.failure.code, message: outcome.failure.message };
