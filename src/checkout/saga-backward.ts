import { setTimeout as sleep } from 'node:timers/promises';
import { together } from '../platform/db/index.ts';
import { BACKOFF_MS, later, MAX_ATTEMPTS, type RunContext, sagaHints } from './saga-context.ts';
import {
  findSaga,
  finishStep,
  lockOrderThenSaga,
  type Saga,
  updateSaga,
  updateSagaLogged,
} from './saga-store.ts';
import { STEPS } from './steps.ts';

/**
 * Undoes the steps from saga.step back to the first, each compensation logged like a step;
 * then fails the order with the saga's failure, or cancels it when a cancel was asked. A compensation that fails all its
 * attempts stops the run with the lease released: the watchdog tries again later (see watchdog.ts).
 * When the order's payments hold money again at the end (a refund that was under way failed
 * meanwhile), the saga goes back to undoing authorize instead of finishing (still compensating).
 */
export async function backward(r: RunContext, saga: Saga): Promise<Saga | 'stop'> {
  for (let index = STEPS.findIndex((s) => s.name === saga.step); index >= 0; index--) {
    const def = STEPS[index]!;
    for (let attempt = 1; ; attempt++) {
      const signal = AbortSignal.timeout(r.timeoutMs);
      const started = await r.tx(saga.tenantId, async (trx) => {
        const current = await findSaga(trx, { id: saga.id }, true);
        if (current?.status !== 'compensating') return undefined;
        const { logged } = await updateSagaLogged(
          trx,
          saga.id,
          { step: def.name, leaseUntil: later(r.leaseMs) },
          { attempt: { tenantId: current.tenantId, step: def.name, action: 'compensate' } },
        );
        return { step: logged!, c: await r.contextOf(trx, current, signal) };
      });
      if (!started) return 'stop';
      let output: unknown;
      let error: unknown;
      try {
        output = await def.compensate(started.c);
      } catch (e) {
        error = e;
      }
      const done = await r.tx(saga.tenantId, async (trx) => {
        if (error === undefined) {
          // Logged as an object (a bare JSON string would read back ambiguously).
          await finishStep(trx, started.step.id, { status: 'succeeded', output: { result: output ?? null } });
          await def.compensated?.(trx, started.c, output);
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
        r.logger.error(
          { sagaId: saga.id, step: def.name, err: error },
          'checkout compensation keeps failing',
        );
        await r.tx(saga.tenantId, (trx) => updateSaga(trx, saga.id, { leaseOwner: null, leaseUntil: null }));
        return 'stop';
      }
      await sleep(BACKOFF_MS[attempt - 1] ?? 250);
    }
  }
  return r.tx(saga.tenantId, async (trx) => {
    // The order is written here: its row is locked before the saga's, as a cancel takes them.
    const current = (await lockOrderThenSaga(trx, r.deps.orders, saga))!;
    const [c, holds] = await together([
      r.contextOf(trx, current, AbortSignal.timeout(r.timeoutMs)),
      r.deps.payments.holdsMoney(trx, saga.tenantId, saga.orderId),
    ]);
    if (holds) {
      // A refund under way when authorize was undone (staff's, say) failed since: what it held
      // is the customer's again. Given back before the order closes (a refund failing after this
      // commit reopens the saga instead: refund-failed.ts).
      r.logger.info(
        { sagaId: saga.id, orderId: saga.orderId },
        'checkout gives back money a failed refund left',
      );
      return updateSaga(trx, saga.id, { step: 'authorize' });
    }
    const failure = current.failure!;
    // A cancel the customer asked for (answered 202: it will be done) is honoured even when a
    // step failed or timed out before the run saw it: the order ends cancelled with the cancel's
    // reason; the saga keeps the step's failure, and its log the failed attempt.
    const cancel = current.cancelRequested;
    const cancelled = failure.reason === 'cancelled' || cancel !== null;
    if (c.order.status !== (cancelled ? 'cancelled' : 'failed')) {
      await r.deps.orders.transition(trx, saga.tenantId, saga.orderId, cancelled ? 'cancelled' : 'failed', {
        actor: cancel?.actor ?? c.actor,
        known: c.order,
        ...(cancelled
          ? { reason: cancel?.reason ?? failure.message }
          : { failure: { reason: failure.reason as never, message: failure.message } }),
        meta: c.meta,
        hints: sagaHints(current),
      });
    }
    // What the order took from its cart is the shopper's again (a merge at login moves it).
    if (current.cartId) await r.deps.cart.forgetCheckout(trx, saga.tenantId, current.cartId, saga.orderId);
    return updateSaga(trx, saga.id, {
      status: cancelled ? 'cancelled' : 'failed',
      payment: null,
      deadlineAt: null,
      finishedAt: new Date(),
      leaseOwner: null,
      leaseUntil: null,
    });
  });
}
