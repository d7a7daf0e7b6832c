import { setTimeout as sleep } from 'node:timers/promises';
import { handleFound, type Subscriber } from '../platform/events/index.ts';
import type { PaymentsDeps } from './deps.ts';
import { REFUND_RECHECK_TYPE, type RefundRecheck, refundRecheckEvent } from './payment-events.ts';
import { refundPayment } from './refund.ts';
import type { PaymentsTrx } from './tables.ts';

/** Rechecks a refund gets before its recheck fails (then the WAL's retries and dead letters). */
export const REFUND_RECHECKS = 8;

/**
 * A refund still pending when its recheck comes (its call failed or was cut short, or the process
 * died during it: the 502 or 504 named its refundKey, and nobody asked again) holds its amount
 * and may have moved money at the provider unseen. The recheck asks the provider again under the
 * refund's own key, outside the delivery's transaction (as the checkout's watchdog kicks a run):
 * the provider answers what it did (refunded: the refund succeeds; refused: it fails, publishing
 * refund-failed, which gives a closed order's money back), never a second refund. Each recheck
 * that finds it pending writes the next; after REFUND_RECHECKS the handler fails instead, so the
 * WAL retries it by Mercato's policy (each retry asking again) and, when those are spent, the
 * message lands in payment-events' dead letters, which the exception collector captures.
 */
export function refundRecheckSubscriber(deps: PaymentsDeps, firstMs: number) {
  const calls = new Set<Promise<unknown>>();
  let closing = false;

  /** Asks again under the refund's key after the delivery committed; failures are logged. */
  function askAgain(tenantId: string, paymentKey: string, refundKey: string, reason: string) {
    if (closing) return;
    const p = sleep(50)
      .then(() =>
        closing
          ? undefined
          : refundPayment(
              deps,
              tenantId,
              paymentKey,
              { reason, refundKey },
              AbortSignal.timeout(deps.ctx.config.checkoutStepTimeoutMs),
            ),
      )
      .catch((error: unknown) =>
        deps.logger.warn(
          { err: error, tenantId, refundKey },
          'payments: a pending refund asked again failed',
        ),
      )
      .finally(() => calls.delete(p));
    calls.add(p);
  }

  const subscriber: Subscriber = {
    name: 'payments.refund-recheck',
    topic: 'payment-events',
    types: [REFUND_RECHECK_TYPE],
    // Nearly every refund settles in its own call: one read tells which of a batch are pending.
    handleMany: (anyTrx, batch) =>
      handleFound(
        batch,
        (event) => (event.data as Partial<RefundRecheck>).refundId,
        async (ids) => {
          const rows = await (anyTrx as PaymentsTrx)
            .selectFrom('payments.refunds')
            .select('id')
            .where('id', 'in', ids)
            .where('status', '=', 'pending')
            .execute();
          return new Set(rows.map((r) => r.id));
        },
        (event) => subscriber.handle(anyTrx, event),
      ),
    async handle(anyTrx, event) {
      const trx = anyTrx as PaymentsTrx;
      const recheck = event.data as RefundRecheck;
      const refund = await trx
        .selectFrom('payments.refunds as r')
        .innerJoin('payments.payments as p', 'p.id', 'r.payment_id')
        .select(['r.refund_key', 'r.reason', 'r.status', 'p.key'])
        .where('r.id', '=', recheck.refundId)
        .executeTakeFirst();
      if (refund?.status !== 'pending') return;
      askAgain(event.tenantid, refund.key, refund.refund_key, refund.reason);
      if (recheck.attempt >= REFUND_RECHECKS) {
        throw new Error(
          `payments: refund ${refund.refund_key} of payment ${recheck.paymentId} is still pending after ${recheck.attempt} rechecks`,
        );
      }
      await deps.events.publish(
        trx,
        event.tenantid,
        'payment-events',
        [refundRecheckEvent(recheck, firstMs, recheck.attempt + 1)],
        { correlationId: event.correlationid, causationId: event.id },
      );
    },
  };
  return {
    subscriber,
    /** Waits for the questions in flight (shutdown). */
    async close() {
      closing = true;
      await Promise.allSettled([...calls]);
    },
  };
}
