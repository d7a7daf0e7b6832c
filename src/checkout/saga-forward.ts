import { setTimeout as sleep } from 'node:timers/promises';
import type { Order } from '../orders/index.ts';
import { together } from '../platform/db/index.ts';
import { begin, errorOf, finished, type Started, succeeded } from './saga-begin.ts';
import { BACKOFF_MS, MAX_ATTEMPTS, type RunContext, toCompensate, toCompensating } from './saga-context.ts';
import { finishStep, lockOrderThenSaga, type Saga, type SagaLog, updateSagaLogged } from './saga-store.ts';
import type { SagaStepDefinition } from './step-definition.ts';
import { FAILURES, failed, outcomeOfError, type StepOutcome } from './step-outcome.ts';
import { STEPS } from './steps.ts';
import type { CheckoutTrx, StepName } from './tables.ts';

/**
 * Where a forward step left the saga; `next`: the following step's attempt, already started;
 * `order`: the order as a finished saga left it.
 */
export type ForwardResult = { saga: Saga; next?: Started; order?: Order } | 'stop' | 'paused';

/** Thrown in a transaction whose step came to another outcome than foreseen: it rolls back and runs again. */
const UNFORESEEN = new Error('the step came to another outcome than foreseen');
const sameOutput = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** When the step's first attempt started (ms since the epoch). */
async function firstAttemptAt(trx: CheckoutTrx, sagaId: string, step: StepName): Promise<number> {
  const row = await trx
    .selectFrom('checkout.saga_steps')
    .select((eb) => eb.fn.min('started_at').as('first'))
    .where('saga_id', '=', sagaId)
    .where('step', '=', step)
    .where('action', '=', 'invoke')
    .executeTakeFirst();
  return row?.first ? new Date(row.first as Date | string).getTime() : Date.now();
}

/**
 * In trx, the saga and its order locked (`locked`: running at started's step, no cancel asked):
 * started's step succeeded; its effect and the saga's move (succeeded) go out together with the
 * start of `next` (begin), whose local and started read only what the move leaves as it is. The
 * started attempt then carries the order as the move left it.
 */
async function startAhead(
  r: RunContext,
  trx: CheckoutTrx,
  started: Started,
  output: unknown,
  next: SagaStepDefinition,
  locked: Saga,
  log: SagaLog,
): Promise<ForwardResult> {
  const { c, def } = started;
  const [moved, begun] = await together([
    succeeded(r, trx, c.saga, def, c, output, log),
    begin(r, trx, { ...locked, step: next.name, deadlineAt: null }, next, c.order),
  ]);
  // The locks held: nothing else could pause or cancel the saga in between.
  if (moved === 'paused' || moved.next !== next) throw new Error(`saga ${locked.id} moved unexpectedly`);
  if (begun === 'paused' || 'saga' in begun) return begun;
  begun.c.order = moved.order;
  return { saga: begun.c.saga, next: begun };
}

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
    const begun =
      prestarted ??
      (await r.tx(saga.tenantId, async (trx) => {
        // A step's start may write the order (reserve's effect, authorize's payment_processing):
        // its row is locked before the saga's, as a cancel takes them.
        const current = await lockOrderThenSaga(trx, r.deps.orders, saga);
        if (current?.status !== 'running' || current.step !== def.name) return undefined;
        return begin(r, trx, current, def);
      }));
    prestarted = undefined;
    if (!begun) return 'stop';
    if (begun === 'paused' || 'saga' in begun) return begun;
    const started = begun;
    const invoked: StepOutcome = await started.def.invoke!(started.c).catch((error) =>
      outcomeOfError(error, started.signal),
    );
    let outcome = invoked;
    const following = STEPS[STEPS.indexOf(started.def) + 1];
    // The next step may start right behind this one's outcome when it reads nothing of what
    // this step changes on the order, and no test hook pauses between them: the order's and the
    // saga's rows are then locked with the outcome (the order first, as a cancel takes them), so
    // whether the saga goes on is known before its move is written.
    const ahead = following?.startsOnStableOrder && r.pauseAfter !== started.def.name ? following : undefined;
    // The outcome settle will come to, when the step can tell from its call's answer: the
    // step's success is then written with settle's statements (one round trip), and the
    // transaction runs again the usual way if settle comes to anything else.
    let foreseen = ahead || !invoked.ok ? undefined : started.def.foresee?.(started.c);
    const settleTx = () =>
      r.tx(saga.tenantId, async (trx): Promise<ForwardResult | undefined> => {
        const [settled, locked, early] = await together([
          started.def.settle?.(trx, started.c, invoked),
          ahead ? lockOrderThenSaga(trx, r.deps.orders, started.c.saga) : undefined,
          foreseen
            ? succeeded(r, trx, started.c.saga, started.def, started.c, foreseen.output, {
                finish: {
                  stepId: started.step.id,
                  outcome: { status: 'succeeded', output: foreseen.output },
                },
              })
            : undefined,
        ]);
        outcome = settled ?? invoked;
        if (early && (!outcome.ok || outcome.pending || !sameOutput(outcome.output, foreseen!.output)))
          throw UNFORESEEN;
        if (outcome.ok) {
          const finish = {
            stepId: started.step.id,
            outcome: { status: 'succeeded' as const, output: outcome.output },
          };
          if (outcome.pending) {
            // The provider settles it later (webhook → payment event → a run): the saga waits
            // until the pending deadline, counted from the step's first attempt (each watchdog
            // kick asks the provider again in a new attempt, which must not push it on).
            const { saga: waiting } = await updateSagaLogged(
              trx,
              saga.id,
              {
                leaseOwner: null,
                leaseUntil: null,
                deadlineAt: new Date((await firstAttemptAt(trx, saga.id, started.def.name)) + r.pendingMs),
              },
              { finish },
            );
            return { saga: waiting };
          }
          if (
            ahead &&
            locked?.status === 'running' &&
            locked.step === started.def.name &&
            !locked.cancelRequested
          ) {
            return startAhead(r, trx, started, outcome.output, ahead, locked, { finish });
          }
          // Written already when foreseen (the same success, checked above).
          const moved =
            early ??
            (await succeeded(r, trx, started.c.saga, started.def, started.c, outcome.output, { finish }));
          if (moved === 'paused' || !moved.next) return moved === 'paused' ? moved : finished(moved);
          const next = await begin(r, trx, moved.saga, moved.next, moved.order);
          if (next === 'paused' || 'saga' in next) return next;
          return { saga: next.c.saga, next };
        }
        const finish = {
          stepId: started.step.id,
          outcome: { status: 'failed' as const, error: errorOf(outcome) },
        };
        if (outcome.retryable && attempt < MAX_ATTEMPTS && !started.signal.aborted) {
          await finishStep(trx, finish.stepId, finish.outcome);
          return undefined;
        }
        if (outcome.failure.reason in FAILURES) {
          const { saga: compensating } = await updateSagaLogged(trx, saga.id, toCompensate(outcome.failure), {
            finish,
          });
          return { saga: compensating };
        }
        // An internal error past its attempts: the watchdog tries again until the deadline.
        await updateSagaLogged(trx, saga.id, { leaseOwner: null, leaseUntil: null }, { finish });
        return 'stop';
      });
    const after = await settleTx().catch((error: unknown) => {
      if (error !== UNFORESEEN) throw error;
      foreseen = undefined;
      return settleTx();
    });
    if (after === undefined) {
      await sleep(BACKOFF_MS[attempt - 1] ?? 250);
      continue;
    }
    if (outcome.ok && outcome.pending) return 'stop';
    return after;
  }
}
