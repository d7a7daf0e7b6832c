import type { Subscriber } from '../platform/events/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import type { CheckoutDeps } from './deps.ts';
import { toGiveBackAgain } from './saga-context.ts';
import type { SagaRunner } from './saga-runner.ts';
import { findSaga, updateSaga } from './saga-store.ts';
import type { CheckoutTrx } from './tables.ts';
import { newWatchdog } from './watchdog.ts';

export const REFUND_FAILED_TYPE = 'mercato.payment.refund-failed';

/**
 * A refund of a closed order's payment failed (the provider refused it): what it held back is the
 * customer's money again, and nothing gives it back. Such a refund was under way when the saga
 * undid authorize (a staff refund whose call failed, so it stayed pending, holding its amount), so
 * the give-back refunded only the rest.
 *
 * When the order's saga is finished (failed or cancelled) and its payments hold money
 * (PaymentsApi.holdsMoney), this records, in the delivery's transaction, that the saga undoes
 * authorize again (`toGiveBackAgain`), with a watchdog, and kicks a run: the refund (under the
 * next `order-<id>-refund-N` key) is made by the run, outside any transaction, never here. After
 * a crash the watchdog resumes it; a give-back that keeps failing ends as any compensation does
 * (the watchdog's retries, then the order-events dead letters, which the exception collector
 * captures). A saga still compensating checks the payments itself before it closes the order
 * (saga-backward.ts); a running or completed one is a live order, whose refunds are staff's.
 */
export function refundFailedSubscriber(deps: CheckoutDeps, runner: SagaRunner, delayMs: number): Subscriber {
  return {
    name: 'checkout.refunds',
    topic: 'payment-events',
    types: [REFUND_FAILED_TYPE],
    async handle(anyTrx, event) {
      const trx = anyTrx as CheckoutTrx;
      const { orderId } = event.data as { orderId?: unknown };
      if (!isUuid(orderId)) return;
      // Locked: the run that closes a saga locks it too, so this sees the saga as it closed it.
      const saga = await findSaga(trx, { orderId: orderId.toLowerCase() }, true);
      if (saga?.status !== 'failed' && saga?.status !== 'cancelled') return;
      if (!(await deps.payments.holdsMoney(trx, event.tenantid, saga.orderId))) return;
      const watchdog = await newWatchdog(deps.events, trx, event.tenantid, saga, delayMs, {
        correlationId: event.correlationid,
        causationId: event.id,
      });
      await updateSaga(trx, saga.id, { ...toGiveBackAgain, ...watchdog });
      runner.kick(event.tenantid, saga.id, 50);
    },
  };
}
