import type { CaptureCall, CaptureResult } from '../payments/index.ts';
import { together } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import { sagaHints } from './saga-context.ts';
import type { SagaStepDefinition } from './step-definition.ts';
import { paymentKey, reservationKey } from './step-keys.ts';
import { failed } from './step-outcome.ts';

/** What the confirm step carries from its start to its outcome. */
type Capturing = { call?: CaptureCall; result?: CaptureResult; error?: AppError };

export const confirmStep: SagaStepDefinition = {
  name: 'confirm',
  // local and started use the order's id alone.
  startsOnStableOrder: true,
  // The stock is committed before the capture (with the step's start): a reservation that expired
  // fails the order before the customer is charged.
  async local(trx, { deps, saga, order, actor, meta }) {
    try {
      await deps.inventory.within(trx).commit(saga.tenantId, reservationKey(order.id), actor, meta);
      return { ok: true };
    } catch (error) {
      if (error instanceof AppError && error.code === 'RESERVATION_NOT_ACTIVE') {
        return failed('timeout', 'the stock reservation expired before the order was confirmed');
      }
      throw error;
    }
  },
  async started(trx, c) {
    try {
      c.carried = { call: await c.deps.payments.startCapture(trx, c.saga.tenantId, paymentKey(c.order.id)) };
    } catch (error) {
      // A payment that cannot be captured (not found, not authorized) fails the step, not the transaction.
      if (!(error instanceof AppError)) throw error;
      c.carried = { error };
    }
    return undefined;
  },
  async invoke({ deps, saga, signal, carried }) {
    const capturing = carried as Capturing;
    if (capturing.error) throw capturing.error;
    if (!capturing.call!.done) {
      capturing.result = await deps.payments.callCapture(saga.tenantId, capturing.call!, signal);
    }
    return { ok: true };
  },
  async settle(trx, { deps, saga, carried, meta }, outcome) {
    const capturing = carried as Capturing;
    if (!outcome.ok) return outcome;
    const call = capturing.call!;
    const { payment, refused } = call.done
      ? { payment: call.done, refused: undefined }
      : await deps.payments.finishCapture(trx, saga.tenantId, call, capturing.result!, meta);
    if (refused !== undefined)
      return failed('payment_error', `the provider refused the capture: ${refused}`, true);
    return { ok: true, output: { payment: payment.id, status: payment.status } };
  },
  // A capture the provider made completes the payment (finishCapture), unless something settled
  // the payment meanwhile.
  foresee({ carried }) {
    const { call, result } = carried as Capturing;
    if (!call || call.done || result?.status !== 'captured') return undefined;
    return { output: { payment: call.row.id, status: 'completed' } };
  },
  async invoked(trx, { deps, saga, order, actor, meta }) {
    const [completed] = await together([
      deps.orders.transition(trx, saga.tenantId, order.id, 'completed', {
        actor,
        known: order,
        paymentStatus: 'captured',
        meta,
        hints: sagaHints(saga),
      }),
      saga.cartId ? deps.cart.clearCart(trx, saga.tenantId, saga.cartId) : undefined,
    ]);
    return completed;
  },
  async compensate() {
    // Capture and commit are undone by the compensations of authorize (refund) and reserve (return).
    return null;
  },
};
