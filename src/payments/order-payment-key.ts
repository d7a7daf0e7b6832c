import { AppError } from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';

/**
 * The key of the payment an order's checkout takes: `order-<orderId>`, the same on every attempt
 * and process of its saga (checkout/step-keys.ts). The payment is made without the order's check
 * staff payments get (order-fit.ts), and its saga finds it by this key, so the key is the
 * checkout's alone: POST /payments refuses it (refuseOrderPaymentKey).
 */
export const orderPaymentKey = (orderId: string) => `order-${orderId}`;

/** `order-<uuid>` in any case (the checkout writes it lower case; PostgreSQL compares keys exactly). */
const isOrderPaymentKey = (key: string) => /^order-/i.test(key) && isUuid(key.slice('order-'.length));

/**
 * 400 VALIDATION_FAILED naming /key for a caller's payment key of the checkout's shape. Taken
 * before the order's checkout authorized, a staff payment under `order-<id>` of another order
 * made that checkout's authorization 409 IDEMPOTENCY_KEY_REUSED, so the order was never paid
 * (a flash sale's order waiting for its payment: every paid order of the tenant's queue batch with
 * it); under the order's own id it answered the checkout's payment. Payments the checkout made
 * under such keys are untouched; a key of any other shape stays the caller's, `order-<id>-…` too.
 */
export function refuseOrderPaymentKey(key: string | undefined): void {
  if (key === undefined || !isOrderPaymentKey(key)) return;
  const message = 'order-<orderId> is the key of the payment the order’s checkout takes: choose another key';
  throw new AppError('VALIDATION_FAILED', `payment key ${key}: ${message}`, {
    errors: [{ in: 'body', pointer: '/key', message }],
  });
}
