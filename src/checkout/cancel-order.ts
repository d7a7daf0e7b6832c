import { type Order, orderStatus } from '../orders/index.ts';
import { withTenant } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import type { CheckoutDeps } from './deps.ts';
import { toCancelCompleted } from './saga-context.ts';
import { findSaga, updateSaga } from './saga-store.ts';
import type { CheckoutTrx } from './tables.ts';
import { newWatchdog } from './watchdog.ts';

/**
 * Cancels an order by running its saga's compensations: refund or void, stock released or put
 * back. A running saga is asked to stop at its next step boundary (never in the middle of a
 * provider call, whose effect would then escape the compensation); a completed one compensates
 * from its last step. `mayCancel` says whether the caller may cancel this order (404 if not).
 */
export async function cancelOrder(
  deps: CheckoutDeps,
  tenantId: string,
  orderId: string,
  request: { actor: string; reason: string; mayCancel: (order: Order) => boolean },
): Promise<{ sagaId: string | undefined }> {
  const sagaId = await withTenant(deps.db, tenantId, async (anyTrx) => {
    const trx = anyTrx as CheckoutTrx;
    const order = await deps.orders.get(trx, tenantId, orderId, { lock: true });
    if (!order || !request.mayCancel(order)) throw new AppError('NOT_FOUND', `order ${orderId} not found`);
    orderStatus.assert(order.status, 'cancelled');
    const saga = await findSaga(trx, { orderId: order.id }, true);
    const cancel = { actor: request.actor, reason: request.reason };
    if (!saga) {
      await deps.orders.transition(trx, tenantId, order.id, 'cancelled', {
        actor: request.actor,
        reason: request.reason,
      });
      return undefined;
    }
    if (saga.status === 'completed') {
      // A staff payment of the order is made before this commits (and the compensation gives it
      // back with the saga's own) or sees the saga compensating and is refused (payments/order-fit.ts).
      await deps.payments.lockOrder(trx, tenantId, order.id);
      // The completed saga's watchdogs end with it (the checkout's last, if still to come, finds
      // it is no longer the saga's): a new one, with the cancel, resumes the undoing after a crash
      // and retries a compensation that keeps failing (watchdog.ts).
      const delay = deps.ctx.config.checkoutStepTimeoutMs + 1000;
      const watchdog = await newWatchdog(deps.events, trx, tenantId, saga, delay, {
        correlationId: order.correlationId ?? undefined,
        causationId: saga.id,
      });
      await updateSaga(trx, saga.id, { ...toCancelCompleted(cancel), ...watchdog });
    } else if (saga.status === 'running') {
      await updateSaga(trx, saga.id, { cancelRequested: cancel });
    } else if (saga.failure?.reason !== 'cancelled' && !saga.cancelRequested) {
      throw new AppError('CONFLICT', `order ${order.name} is already being undone after a failed checkout`);
    }
    // Compensating for a cancel already asked (also one a step's failure overtook, which still ends
    // cancelled): this one is answered as that one is (200 or 202).
    return saga.id;
  });
  return { sagaId };
}
