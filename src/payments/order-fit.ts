import { sql } from 'kysely';
import { lockNamed } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import type { PaymentsDeps } from './deps.ts';
import type { PaymentsTrx } from './tables.ts';

type Initiate = { orderId: string; key: string; amount?: number | undefined; currency: string };

/** The payment's amount, and the check its transaction runs first (when the orders module is there). */
export type OrderFit = { amount: number; guard?: (trx: PaymentsTrx) => Promise<void> };

/** An orders' status no payment is taken for. */
const CLOSED = new Set(['cancelled', 'failed']);

/**
 * An order's status while its checkout runs or waits for its payment (a flash sale's order waits,
 * created, until its customer pays): the checkout takes the order's payment then.
 */
const IN_CHECKOUT = new Set(['created', 'inventory_reserved', 'payment_processing']);

/** The lock a staff payment's check and a cancel of a completed checkout share (cancel-order.ts). */
export const orderLock = (tenantId: string, orderId: string) =>
  `payments.order:${tenantId}:${orderId.toLowerCase()}`;

/** 409 CONFLICT: the order's checkout takes (or gives back) its payment, not staff. */
function inCheckout(orderId: string, extras: Record<string, string>) {
  return new AppError(
    'CONFLICT',
    `order ${orderId} is being checked out or undone: its checkout takes its payment and gives it back; a staff payment is taken only for a completed order`,
    { orderId, ...extras },
  );
}

/**
 * 422 CHECKOUT_INVALID when the orders module says the payment's order is cancelled or failed:
 * staff may not authorize or capture money for it (the compensation that closed it gave back
 * what its payments held then; fail it instead). Nothing is checked without the orders module, or
 * for an order it has not.
 */
export async function refuseClosedOrder(
  deps: PaymentsDeps,
  tenantId: string,
  payment: { id: string; order_id: string },
  step: 'authorize' | 'capture',
): Promise<void> {
  if (!deps.findOrder) return;
  const order = await deps.findOrder(tenantId, payment.order_id);
  if (!order || !CLOSED.has(order.status)) return;
  throw new AppError(
    'CHECKOUT_INVALID',
    `cannot ${step} payment ${payment.id}: its order ${payment.order_id} is ${order.status} (fail the payment instead)`,
    { paymentId: payment.id, orderId: payment.order_id, orderStatus: order.status },
  );
}

/**
 * The order a staff payment is for must exist and the payment fit it: its currency, an amount
 * within the total, an order still open, and together with the order's other payments that hold
 * money (neither failed nor voided; refunds given back) no more than its total, so that payments
 * under other keys never charge an order twice. The sum is taken under a lock of the order's
 * payments, so two at once cannot both fit; a payment under a key already used is that payment
 * (its idempotent replay), checked as it was made.
 *
 * The checkout takes an order's payment (key `order-<id>`, made without this check): while it
 * runs or waits for the payment (the order created, stock reserved or payment processing), or
 * its saga is anything but completed (compensating after a cancel, failed, cancelled), a staff
 * payment is 409 CONFLICT. The saga is read under the lock, which a cancel of a completed order
 * takes as it turns the saga to compensating: a staff payment is either made before (and the
 * compensation gives it back) or refused.
 */
export async function fitOrder(deps: PaymentsDeps, tenantId: string, body: Initiate): Promise<OrderFit> {
  if (!deps.findOrder) {
    if (body.amount !== undefined) return { amount: body.amount };
    throw new AppError('VALIDATION_FAILED', 'amount is required', {
      errors: [{ in: 'body', pointer: '/amount', message: 'missing field "amount"' }],
    });
  }
  const order = await deps.findOrder(tenantId, body.orderId);
  if (!order) throw new AppError('NOT_FOUND', `order ${body.orderId} not found`);
  const misfit = (pointer: string, message: string) =>
    new AppError('CHECKOUT_INVALID', `the payment does not fit order ${body.orderId}: ${message}`, {
      errors: [{ in: 'body', pointer, message }],
    });
  if (order.currency !== body.currency)
    throw misfit('/currency', `must be the order's currency ${order.currency}`);
  const amount = body.amount ?? order.total;
  if (amount > order.total) throw misfit('/amount', `must not exceed the order's total ${order.total}`);
  if (amount <= 0) throw misfit('/amount', 'the order has nothing to pay');
  const orderId = body.orderId.toLowerCase();
  const guard = async (trx: PaymentsTrx) => {
    await lockNamed(trx, orderLock(tenantId, orderId));
    const replay = await trx
      .selectFrom('payments.payments')
      .select('id')
      .where('key', '=', body.key)
      .executeTakeFirst();
    if (replay) return;
    if (CLOSED.has(order.status)) throw misfit('/orderId', `the order is ${order.status}`);
    if (IN_CHECKOUT.has(order.status)) throw inCheckout(orderId, { orderStatus: order.status });
    const saga = await deps.checkoutOf?.(trx, tenantId, orderId);
    if (saga !== undefined && saga !== 'completed') throw inCheckout(orderId, { checkoutStatus: saga });
    const { held } = await trx
      .selectFrom('payments.payments')
      .select(sql<string>`coalesce(sum(amount - refunded_amount), 0)`.as('held'))
      .where('order_id', '=', orderId)
      .where('status', 'not in', ['failed', 'voided'])
      .executeTakeFirstOrThrow();
    const left = order.total - Number(held);
    if (amount > left) {
      throw misfit(
        '/amount',
        `the order's other payments hold ${held} of its total ${order.total}: at most ${Math.max(left, 0)} is left to pay`,
      );
    }
  };
  return { amount, guard };
}
