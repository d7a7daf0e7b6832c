import { createHash } from 'node:crypto';
import { type Static, Type } from 'typebox';
import type { Held } from '../checkout/index.ts';
import type { NewOrder, Order } from '../orders/index.ts';
import { PROVIDERS } from '../payments/index.ts';
import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import type { Logger } from '../platform/observability/index.ts';
import type { ExceptionsDeps } from './deps.ts';
import type { ExceptionRow } from './exception-view.ts';
import { exceptionStatus } from './lifecycle.ts';
import { type Finished, finishRetry } from './retry-outcome.ts';
import { type AttemptRow, findException } from './retry-store.ts';
import type { ExceptionsTrx } from './tables.ts';

/**
 * The idempotency scope of the orders retries make; each one's key is its attempt's id, so an
 * attempt makes at most one order (the orders' unique key) and its order is found by it.
 */
export const RETRY_ORDER_SCOPE = 'exceptions:retry';

/** The payment an operator gives an order's retry, shaped as POST /orders takes it. */
export const RetryPaymentSchema = Type.Object(
  {
    provider: Type.Optional(
      Type.String({ pattern: '^[a-z0-9-]{1,40}$', description: 'The payment provider (Default: test)' }),
    ),
    token: Type.String({
      pattern: '^[\\x21-\\x7e]{1,200}$',
      description:
        'A new payment token of the provider (never a card number), e.g. tok_visa for the test provider; used once, never shown or logged',
    }),
  },
  {
    additionalProperties: false,
    description: 'Only for a Mercato order’s exception (required there): what the new checkout is paid with',
  },
);
export type RetryPayment = Static<typeof RetryPaymentSchema>;

/**
 * 400 naming /payment/provider for a provider Mercato does not have: checked before anything is
 * recorded (the payments module would otherwise meet it only at its table's check).
 */
export function checkProvider(payment: RetryPayment | undefined): void {
  const provider = payment?.provider;
  if (provider === undefined || (PROVIDERS as readonly string[]).includes(provider)) return;
  const message = `must be one of ${PROVIDERS.join(', ')}`;
  throw new AppError('VALIDATION_FAILED', `payment.provider ${message}`, {
    errors: [{ in: 'body', pointer: '/payment/provider', message }],
  });
}

/** Why an order's retry without a payment is refused (409 NOT_RETRYABLE). */
export const ORDER_NEEDS_PAYMENT =
  "a failed order's checkout runs again only with a new payment token (body: {payment: {token, provider?}}): " +
  'the shopper’s token was single-use and is not kept, so no authorization can be made without one';

/** A checkout attempt's end, or undefined while its order's saga still runs. */
export type CheckoutResult = { status: 'succeeded' | 'failed'; outcome: string };

/** The new order as outcomes name it. */
export const describeOrder = (order: { id: string; number?: number | undefined }) =>
  `new order ${order.number === undefined ? '' : `#${order.number} `}(${order.id})`;

/**
 * The order an order exception names, read in trx: only a failed order's checkout runs again
 * (409 NOT_RETRYABLE otherwise: a cancelled or completed order is not the shopper's failed purchase).
 */
export async function failedOrder(
  deps: ExceptionsDeps,
  trx: ExceptionsTrx,
  tenantId: string,
  orderId: string,
): Promise<Order> {
  const order = await deps.orders.get(trx, tenantId, orderId);
  if (!order) throw new AppError('NOT_RETRYABLE', `order ${orderId} no longer exists`);
  if (order.status !== 'failed') {
    throw new AppError(
      'NOT_RETRYABLE',
      `order ${order.name} is ${order.status}: only a failed checkout runs again`,
    );
  }
  return order;
}

/**
 * The new order of a retry: the failed one's customer, email, currency, lines, addresses,
 * shipping option and totals, at the prices the shopper agreed to. The orders module checks it
 * again as it checks every order (fields, lines and totals add up); stock is the reserve step's to
 * judge. No cart: the shopper's cart stays theirs. The creation's history entry says whose retry
 * of which order it is.
 */
function newOrderOf(
  old: Order,
  made: { id: string; attemptId: string; actor: string; meta: EventMeta },
): NewOrder {
  return {
    id: made.id,
    customerId: old.customerId,
    email: old.email,
    currency: old.currency,
    lines: old.lines.map(({ id: _id, ...line }) => line),
    shippingAddress: old.shippingAddress,
    billingAddress: old.billingAddress,
    shippingOption: old.shippingOption,
    totals: old.totals,
    cartId: null,
    idempotencyScope: RETRY_ORDER_SCOPE,
    idempotencyKey: made.attemptId,
    requestHash: createHash('sha256').update(`retry:${old.id}`).digest('hex'),
    // The failed checkout's correlation id, so the original order, its exception and the retry read as one story.
    correlationId: old.correlationId ?? made.meta.correlationId ?? null,
    // A guest's cart token is not the collector's to carry: the new order is read by staff (and its email).
    guestTokenHash: null,
    actor: `exceptions:retry of ${old.name} (${old.id}) by ${made.actor}`.slice(0, 200),
  };
}

/**
 * In trx (the one recording the attempt): the retry's order (number from orders.takeNumber, taken
 * before trx) and its saga, paid with the operator's payment; the saga's steps that need no call
 * out (reserve) run here too. The caller runs the rest with checkout.run after the commit.
 */
export async function startRetryCheckout(
  deps: ExceptionsDeps,
  trx: ExceptionsTrx,
  tenantId: string,
  start: {
    old: Order;
    orderId: string;
    /** From orders.takeNumber before trx; else taken in trx (the tenant's counter row then stays locked to the commit). */
    number: number | undefined;
    attemptId: string;
    actor: string;
    payment: RetryPayment;
    meta: EventMeta;
  },
): Promise<Held> {
  const { old, meta } = start;
  const input = newOrderOf(old, { id: start.orderId, attemptId: start.attemptId, actor: start.actor, meta });
  const correlated = { ...meta, correlationId: input.correlationId ?? undefined };
  const order = await deps.orders.create(trx, tenantId, input, correlated, start.number);
  return deps.checkout.startSaga(
    trx,
    tenantId,
    {
      order,
      cartId: null,
      payment: { provider: start.payment.provider ?? 'test', token: start.payment.token },
      validated: { checkedBy: 'exception-retry', retryOf: old.id, attemptId: start.attemptId },
    },
    correlated,
  );
}

/** The order a checkout attempt made (its idempotency key is the attempt's id). */
export async function retryOrder(
  deps: ExceptionsDeps,
  trx: ExceptionsTrx,
  tenantId: string,
  attemptId: string,
): Promise<Order | undefined> {
  const found = await deps.orders.findByIdempotencyKey(trx, tenantId, RETRY_ORDER_SCOPE, attemptId);
  if (!found) return undefined;
  const { requestHash: _hash, ...order } = found;
  return order;
}

/**
 * A checkout attempt's result by its order: completed is a success, failed or cancelled a
 * failure (with the order's reason), anything else still runs (the saga's watchdog ends it).
 */
export function checkoutResult(order: Order | undefined): CheckoutResult | undefined {
  if (!order) return { status: 'failed', outcome: 'the retry’s order no longer exists' };
  const name = describeOrder(order);
  if (order.status === 'completed') {
    return { status: 'succeeded', outcome: `${name} completed (payment ${order.paymentStatus})` };
  }
  if (order.status === 'failed') {
    const failure = order.failure
      ? `${order.failure.reason}: ${order.failure.message}`
      : 'no reason recorded';
    return { status: 'failed', outcome: `${name} failed: ${failure}` };
  }
  if (order.status === 'cancelled') {
    return {
      status: 'failed',
      outcome: `${name} cancelled${order.cancelReason ? `: ${order.cancelReason}` : ''}`,
    };
  }
  return undefined;
}

/** A checkout attempt begun in the tenant's transaction (retry.ts's begin), its saga held. */
export type BegunCheckout = { attempt: AttemptRow; exception: ExceptionRow; held: Held };

/**
 * The parts of an order's retry around its transaction: the new order's number before it, and
 * after its commit the saga's run and the attempt's outcome.
 */
export function createOrderRetries(parts: {
  deps: ExceptionsDeps;
  logger: Logger;
  /** Settles the attempt later, by its order's status (retry-settler.ts). */
  watch(tenantId: string, attemptId: string): void;
  invalidate(tenantId: string, transactionId: string): Promise<void>;
}) {
  const { deps, logger } = parts;
  return {
    /**
     * The new order's number for an order's retry with a payment, taken outside any transaction
     * as orders.takeNumber wants, and only when the retry looks able to go ahead (a refusal after
     * it leaves a gap in the numbers; without one the order takes its number in the transaction).
     */
    async number(tenantId: string, transactionId: string, payment: RetryPayment | undefined) {
      if (!payment) return undefined;
      const row = await withTenant(deps.db, tenantId, (trx) =>
        findException(trx as ExceptionsTrx, tenantId, transactionId),
      );
      const startable =
        row?.source_ref?.kind === 'order' &&
        row.retryable &&
        row.retry_count < row.retry_limit &&
        exceptionStatus.can(row.status, 'RETRY_IN_PROGRESS');
      return startable ? deps.orders.takeNumber(tenantId) : undefined;
    },

    /**
     * After the commit: the saga runs as far as it can now (authorize, capture), then the new
     * order's status decides the attempt (finishRetry: outcome, audit, ExceptionRetryCompleted).
     * A checkout still under way (a provider that answers by webhook later) leaves the attempt
     * pending, watched, and settled by its order's status.
     */
    async run(tenantId: string, begun: BegunCheckout, actor: string): Promise<Finished | BegunCheckout> {
      const { attempt, held } = begun;
      try {
        await deps.checkout.run(tenantId, held.saga.id, held);
      } catch (err) {
        // The saga's watchdog carries it on (or compensates it); the attempt waits for its order.
        logger.warn(
          { err, sagaId: held.saga.id },
          'a retry’s checkout run failed; its watchdog carries it on',
        );
      }
      const finished = await withTenant(deps.db, tenantId, async (anyTrx) => {
        const trx = anyTrx as ExceptionsTrx;
        const result = checkoutResult(await deps.orders.get(trx, tenantId, held.order.id));
        return result ? finishRetry(deps, trx, tenantId, attempt.id, result, actor) : undefined;
      });
      if (!finished) {
        parts.watch(tenantId, attempt.id);
        return begun;
      }
      await parts.invalidate(tenantId, begun.exception.transaction_id);
      return finished;
    },
  };
}
