import type { AuthorizationCall, AuthorizeOutcome, AuthorizeResult } from '../payments/index.ts';
import { together } from '../platform/db/index.ts';
import { giveBack, ownPaymentEnd } from './give-back.ts';
import { sagaHints } from './saga-context.ts';
import type { SagaStepDefinition } from './step-definition.ts';
import { paymentKey } from './step-keys.ts';
import { failed, type StepOutcome } from './step-outcome.ts';

/** What the authorize step carries from its start to its outcome: the prepared call and the provider's answer. */
type Authorizing = { call: AuthorizationCall; result?: AuthorizeResult };

/** A settled authorization as the step's outcome. */
function authorizeOutcome(result: AuthorizeOutcome): StepOutcome {
  const output = { payment: result.payment.id, status: result.payment.status };
  switch (result.outcome) {
    case 'authorized':
      return { ok: true, output };
    case 'pending':
      return { ok: true, output, pending: true };
    case 'declined':
      return failed('payment_declined', result.message);
    case 'error':
      return failed('payment_error', result.message, true);
    default:
      throw new Error(`unknown authorization outcome ${JSON.stringify(result)}`);
  }
}

export const authorizeStep: SagaStepDefinition = {
  name: 'authorize',
  // The payment is created (or found) and its call's operation started with the step's start;
  // the call goes out after that commit; its answer is written with the step's outcome.
  async started(trx, c) {
    const { deps, saga, order, actor, meta } = c;
    // A second attempt finds the order already processing. The order's move and the payment's
    // start go out together (one round trip).
    const [changed, call] = await together([
      order.status === 'inventory_reserved'
        ? deps.orders.transition(trx, saga.tenantId, order.id, 'payment_processing', {
            actor,
            known: order,
            paymentStatus: 'pending',
            meta,
          })
        : undefined,
      saga.payment
        ? deps.payments.startAuthorization(trx, saga.tenantId, {
            key: paymentKey(order.id),
            orderId: order.id,
            amount: order.totals.total,
            currency: order.currency,
            provider: saga.payment.provider,
            token: saga.payment.token,
            meta,
          })
        : undefined,
    ]);
    if (call) c.carried = { call } satisfies Authorizing;
    return changed;
  },
  async invoke({ deps, saga, order, signal, carried }) {
    const authorizing = carried as Authorizing | undefined;
    if (!authorizing) {
      // The token is dropped once the authorization settled: the payment says how.
      const payment = await deps.payments.byKey(saga.tenantId, paymentKey(order.id));
      if (payment && ['authorized', 'completed'].includes(payment.status)) return { ok: true };
      return failed('payment_declined', 'the payment was not authorized');
    }
    if (!authorizing.call.done) {
      authorizing.result = await deps.payments.callAuthorization(saga.tenantId, authorizing.call, signal);
    }
    return { ok: true };
  },
  async settle(trx, { deps, saga, carried, meta }, outcome) {
    const authorizing = carried as Authorizing | undefined;
    if (!outcome.ok || !authorizing) return outcome;
    const { call, result } = authorizing;
    return authorizeOutcome(
      call.done ??
        (await deps.payments.finishAuthorization(trx, saga.tenantId, call, result!, meta, sagaHints(saga))),
    );
  },
  invoked: (trx, { deps, saga, order, meta }) =>
    deps.orders.setPaymentStatus(trx, saga.tenantId, order.id, 'authorized', meta, order),
  // Every payment of the order holding money, staff's too (give-back.ts).
  compensate: (c) => giveBack(c, paymentKey(c.order.id)),
  async compensated(trx, { deps, saga, order, meta }, given) {
    // The order's payment status follows its payment's end, a failed one too (declined, an error,
    // a call that timed out): it no longer reads `pending` once nothing is.
    const output = ownPaymentEnd(given);
    const status =
      output === 'refunded' || output === 'partially_refunded' || output === 'voided' || output === 'failed'
        ? output
        : undefined;
    if (status) await deps.orders.setPaymentStatus(trx, saga.tenantId, order.id, status, meta, order);
  },
};
