import type { Order } from '../orders/index.ts';
import type {
  AuthorizationCall,
  AuthorizeOutcome,
  AuthorizeResult,
  CaptureCall,
  CaptureResult,
} from '../payments/index.ts';
import { together } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import type { CheckoutDeps } from './deps.ts';
import { giveBack, ownPaymentEnd } from './give-back.ts';
import { undoPoolReservation } from './pool-units.ts';
import { sagaHints } from './saga-context.ts';
import type { Saga } from './saga-store.ts';
import { failed, type StepOutcome } from './step-outcome.ts';
import type { CheckoutTrx, StepName } from './tables.ts';

/** What a step works with: the saga, its order as it stands, the deadline's signal. */
export type StepContext = {
  deps: CheckoutDeps;
  saga: Saga;
  order: Order;
  signal: AbortSignal;
  meta: EventMeta;
  /** `saga:<id>`: who the inventory ledger, payments and order history name. */
  actor: string;
  /** What an attempt carries from its start (started) to its outcome (settle): the step's own. */
  carried?: unknown;
};

/**
 * A saga step (Medusa's workflow step): `local` makes its database effect in the transaction that
 * logs it (a step with no invoke is done there, with its log, all at once); invoke makes the
 * effect outside Mercato's database (the payment provider), idempotent by keys derived from the
 * saga, so running it again after a crash has no second effect; `started` and `invoked` are the
 * order's changes written in the transaction that logs the attempt's start and its outcome;
 * compensate undoes whatever the step may have done, judged from the real state (it may run after
 * a crash in the middle of invoke), and throws when it must be tried again.
 */
export type SagaStepDefinition = {
  name: StepName;
  /** In the transaction that starts the step (a failure fails the step there); idempotent. */
  local?(trx: CheckoutTrx, c: StepContext): Promise<StepOutcome>;
  /** Returns the order when it changed it. */
  started?(trx: CheckoutTrx, c: StepContext): Promise<Order | undefined>;
  invoke?(c: StepContext): Promise<StepOutcome>;
  /**
   * In the transaction that logs the attempt's outcome, before anything else: the outcome to log
   * (the provider's answer written, and judged, with it).
   */
  settle?(trx: CheckoutTrx, c: StepContext, outcome: StepOutcome): Promise<StepOutcome>;
  /** Returns the order when it changed it. */
  invoked?(trx: CheckoutTrx, c: StepContext, output: unknown): Promise<Order | undefined>;
  compensate(c: StepContext): Promise<unknown>;
  compensated?(trx: CheckoutTrx, c: StepContext, output: unknown): Promise<void>;
  /**
   * local and started read nothing of the order that the step before changes (only its id, lines
   * and totals): the run may start this step right behind the outcome of the one before, in the
   * same round trip (saga-forward.ts), with the order as that step found it.
   */
  startsOnStableOrder?: boolean;
  /**
   * The success (its output) settle will come to, told from what invoke carried (the provider's
   * answer), when it can be: the run writes the step's success together with settle's statements
   * and runs the transaction again the usual way if settle comes to anything else (saga-forward.ts).
   */
  foresee?(c: StepContext): { output: unknown } | undefined;
};

/** The reservation and payment keys of an order's saga: the same on every attempt and process. */
export const reservationKey = (orderId: string) => `order-${orderId}`;
export const paymentKey = (orderId: string) => `order-${orderId}`;

export const validateStep: SagaStepDefinition = {
  name: 'validate',
  async invoke({ deps, saga, order }) {
    if (!order.shippingAddress) return failed('validation', 'the order needs a shipping address');
    if (!saga.payment) return failed('validation', 'the order needs a payment token');
    const variants = await deps.catalog.findVariants(saga.tenantId, {
      ids: order.lines.map((l) => l.variantId),
    });
    const byId = new Map(variants.map((v) => [v.variantId, v]));
    for (const line of order.lines) {
      const variant = byId.get(line.variantId);
      if (variant?.productStatus !== 'active') {
        return failed('validation', `${line.sku} is no longer for sale`);
      }
      const price = variant.prices[order.currency];
      if (price !== line.unitPrice) {
        return failed(
          'validation',
          price === undefined
            ? `${line.sku} has no price in ${order.currency} any more`
            : `the price of ${line.sku} changed from ${line.unitPrice} to ${price}`,
        );
      }
    }
    return { ok: true };
  },
  async compensate() {
    return null;
  },
};

export const reserveStep: SagaStepDefinition = {
  name: 'reserve',
  async local(trx, { deps, saga, order, actor, meta }) {
    const request = {
      lines: order.lines.map((l) => ({ variantId: l.variantId, quantity: l.quantity })),
      ttlSeconds: deps.ctx.config.reservationTtlSeconds,
      reference: `order:${order.id}`,
      actor,
    };
    try {
      // A pool's units (a flash sale's) move to the order's reservation: available stock is not touched.
      const inventory = deps.inventory.within(trx);
      const reservation = saga.stockPool
        ? await inventory.transfer(
            saga.tenantId,
            { ...request, from: saga.stockPool, to: reservationKey(order.id) },
            meta,
          )
        : await inventory.reserve(saga.tenantId, { ...request, key: reservationKey(order.id) }, meta);
      return { ok: true, output: { reservation: reservation.key, status: reservation.status } };
    } catch (error) {
      if (error instanceof AppError && error.code === 'INSUFFICIENT_STOCK') {
        return failed('out_of_stock', error.message);
      }
      throw error;
    }
  },
  invoked: (trx, { deps, saga, order, actor, meta }) =>
    deps.orders.transition(trx, saga.tenantId, order.id, 'inventory_reserved', { actor, meta, known: order }),
  async compensate({ deps, saga, order, actor, meta }) {
    const key = reservationKey(order.id);
    // A sale's units go back into its pool while it is open, committed ones too (pool-units.ts).
    if (saga.stockPool)
      return undoPoolReservation(deps, saga.tenantId, order, key, saga.stockPool, actor, meta);
    try {
      return (await deps.inventory.release(saga.tenantId, key, actor, meta)).status;
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      if (error.code === 'NOT_FOUND') return 'none';
      // Committed (the confirm step got that far): the units go back on hand.
      if (error.code === 'RESERVATION_NOT_ACTIVE') {
        return (await deps.inventory.returnStock(saga.tenantId, key, actor, meta)).status;
      }
      throw error;
    }
  },
};

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

/** The saga's steps in the order they run forward. */
export const STEPS: readonly SagaStepDefinition[] = [validateStep, reserveStep, authorizeStep, confirmStep];
