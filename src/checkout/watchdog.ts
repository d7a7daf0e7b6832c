import {
  type DomainEvent,
  type EventBus,
  type EventMeta,
  handleFound,
  type Subscriber,
} from '../platform/events/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { SagaRunner } from './saga-runner.ts';
import { MAX_ATTEMPTS } from './saga-runner.ts';
import { findSaga, listSteps, type Saga } from './saga-store.ts';
import type { CheckoutTrx } from './tables.ts';

export const WATCHDOG_TYPE = 'mercato.checkout.watchdog';

/**
 * The saga's watchdog: a delayed WAL message in the tenant's order-events, due a step's timeout
 * after it was written. Its own subject (not the order's), so it never holds the order's events
 * back behind it. `chain`: the watchdog's id, passed on to each next one; absent for the one the
 * checkout writes as it begins.
 */
export function watchdogEvent(sagaId: string, orderId: string, delayMs: number, chain?: string): DomainEvent {
  const data = chain === undefined ? { sagaId, orderId } : { sagaId, orderId, chain };
  return { type: WATCHDOG_TYPE, subject: `saga-${sagaId}`, data, delayMs, internal: true };
}

/**
 * In trx, with the change that needs it (a cancel of a completed order, a give-back reopened, a
 * saga an earlier release left without one): a new watchdog, recorded as the saga's own
 * (`watchdog`), so any other still to come ends when it comes (one watchdog per saga at a time).
 * Returns the change to the saga that records it.
 */
export function newWatchdog(
  events: EventBus,
  trx: CheckoutTrx,
  tenantId: string,
  saga: { id: string; orderId: string },
  delayMs: number,
  meta?: EventMeta,
): Promise<{ watchdog: string }> {
  const chain = uuidv7();
  return events
    .publish(trx, tenantId, 'order-events', [watchdogEvent(saga.id, saga.orderId, delayMs, chain)], meta)
    .then(() => ({ watchdog: chain }));
}

/**
 * When a watchdog fires on an unfinished saga, it writes the next one and kicks a run (which
 * times out a step past its deadline, or resumes one a crash left). A saga whose compensation
 * failed all its attempts makes the handler fail instead: the WAL retries the watchdog with the
 * namespace's backoff, each retry kicking a run, and when they are exhausted the watchdog, with
 * the saga id, lands in the namespace's dead letters for an operator (requeue resumes it).
 */
export function watchdogSubscriber(events: EventBus, runner: SagaRunner, delayMs: number): Subscriber {
  const subscriber: Subscriber = {
    name: 'checkout.watchdog',
    topic: 'order-events',
    types: [WATCHDOG_TYPE],
    // Nearly every watchdog finds its saga finished: one read tells which of a batch still run.
    handleMany: (anyTrx, batch) =>
      handleFound(
        batch,
        (event) => (event.data as { sagaId?: unknown }).sagaId,
        (ids) => unfinishedSagas(anyTrx as CheckoutTrx, 'id', ids),
        (event) => subscriber.handle(anyTrx, event),
      ),
    async handle(anyTrx, event) {
      const trx = anyTrx as CheckoutTrx;
      const { sagaId, chain } = event.data as { sagaId: string; chain?: string };
      const saga = await findSaga(trx, { id: sagaId });
      if (!saga || (saga.status !== 'running' && saga.status !== 'compensating')) return;
      // Not the saga's watchdog (a newer one was written: newWatchdog): it ends here.
      if (saga.watchdog !== null && chain !== saga.watchdog) return;
      runner.kick(event.tenantid, sagaId, 50);
      if (saga.status === 'compensating') {
        // Stuck: the step being undone failed a whole run's attempts (a run now in flight may
        // still heal it; if so the next retry finds the saga finished and succeeds).
        // Failures since the step was last undone: a saga undone again (refund-failed.ts) starts
        // its count afresh.
        const log = (await listSteps(trx, sagaId)).filter(
          (s) => s.step === saga.step && s.action === 'compensate',
        );
        const lastDone = log.findLastIndex((s) => s.status === 'succeeded');
        const failures = log.slice(lastDone + 1).filter((s) => s.status === 'failed');
        if (failures.length >= MAX_ATTEMPTS) {
          const last = failures.at(-1)!;
          throw new Error(
            `checkout saga ${sagaId} (order ${saga.orderId}): compensating ${saga.step} keeps failing: ${last.error?.message ?? ''}`,
          );
        }
      }
      const next = saga.status === 'running' ? await pendingRecheckMs(trx, saga, delayMs) : delayMs;
      await events.publish(
        trx,
        event.tenantid,
        'order-events',
        [watchdogEvent(sagaId, saga.orderId, next, chain)],
        {
          correlationId: event.correlationid,
          causationId: event.id,
        },
      );
    },
  };
  return subscriber;
}

/** The longest wait between two questions to the provider about a pending authorization. */
export const PENDING_RECHECK_MAX_MS = 300_000;

/**
 * When the next watchdog comes for a running saga. Usually `delayMs` (a step's timeout and a
 * second). A saga waiting on a pending authorization is settled by the provider's webhook; each
 * watchdog only asks the provider again in case that webhook was lost, so those questions come
 * twice as far apart each time (delayMs, 2×, 4×, … up to PENDING_RECHECK_MAX_MS), not 60 in ten
 * minutes, and never later than a second past the saga's pending deadline, when it times out.
 */
async function pendingRecheckMs(trx: CheckoutTrx, saga: Saga, delayMs: number): Promise<number> {
  if (saga.step !== 'authorize') return delayMs;
  const attempts = await trx
    .selectFrom('checkout.saga_steps')
    .select('status')
    .where('saga_id', '=', saga.id)
    .where('step', '=', 'authorize')
    .where('action', '=', 'invoke')
    .orderBy('started_at', 'desc')
    .orderBy('id', 'desc')
    .execute();
  // Waiting on the provider: its last attempt succeeded (answered pending) and the saga stayed.
  if (attempts[0]?.status !== 'succeeded') return delayMs;
  const backoff = delayMs * 2 ** Math.min(attempts.length - 1, 30);
  const capped = Math.max(Math.min(backoff, PENDING_RECHECK_MAX_MS), delayMs);
  const toDeadline = saga.deadlineAt ? Math.max(saga.deadlineAt.getTime() - Date.now(), 0) + 1000 : capped;
  return Math.min(capped, toDeadline);
}

/** Of `values` (saga ids or order ids), those whose saga is running or compensating: one read. */
async function unfinishedSagas(
  trx: CheckoutTrx,
  by: 'id' | 'order_id',
  values: string[],
  step?: 'authorize',
): Promise<Set<string>> {
  let query = trx
    .selectFrom('checkout.sagas')
    .select(by)
    .where(by, 'in', values)
    .where('status', 'in', ['running', 'compensating']);
  if (step) query = query.where('step', '=', step);
  return new Set((await query.execute()).map((row) => row[by]));
}

/** A pending authorization settled (the provider's webhook): the saga waiting on it goes on. */
export function paymentSubscriber(runner: SagaRunner): Subscriber {
  const subscriber: Subscriber = {
    name: 'checkout.payments',
    topic: 'payment-events',
    types: ['mercato.payment.authorized', 'mercato.payment.failed'],
    // The saga's own authorization: it goes on by the provider's answer, needing no kick.
    skips: (event) => event.hints?.['bySaga'] === true,
    async handle(anyTrx, event) {
      const { orderId } = event.data as { orderId?: string };
      if (typeof orderId !== 'string') return;
      const saga = await findSaga(anyTrx as CheckoutTrx, { orderId });
      if (saga?.status === 'running' && saga.step === 'authorize') runner.kick(event.tenantid, saga.id, 20);
    },
    // Most authorizations settle inside the saga's own call, which has moved on: one read for a batch.
    handleMany: (anyTrx, batch) =>
      handleFound(
        batch,
        (event) => (event.data as { orderId?: unknown }).orderId,
        (ids) => unfinishedSagas(anyTrx as CheckoutTrx, 'order_id', ids, 'authorize'),
        (event) => subscriber.handle(anyTrx, event),
      ),
  };
  return subscriber;
}
