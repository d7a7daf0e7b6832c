import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import type { PaymentsDeps } from './deps.ts';
import { paymentEvent, publish } from './payment-events.ts';
import { type PaymentStatus, paymentMachine } from './payment-machine.ts';
import { finishOperation, lockByKey, providerKeys, startOperation, transition } from './payment-store.ts';
import { callProvider } from './provider-call.ts';
import type { CaptureResult } from './providers/provider.ts';
import { type Payment, toPayment } from './views.ts';

const CAPTURED: readonly string[] = ['completed', 'partially_refunded', 'refunded'];

/**
 * Captures the authorized payment of `key` in full (completed, publishing mercato.payment.completed).
 * One already captured is answered as it is; any other status is 409 ILLEGAL_TRANSITION. The
 * provider's key is derived from the payment's, so concurrent or repeated captures capture once.
 * A provider refusal is 502 PAYMENT_PROVIDER_ERROR and leaves the payment authorized.
 */
export async function capturePayment(
  deps: PaymentsDeps,
  tenantId: string,
  key: string,
  signal: AbortSignal,
  meta?: EventMeta,
): Promise<Payment> {
  signal.throwIfAborted();
  const providerKey = providerKeys.capture(key);
  const start = await withTenant(deps.db, tenantId, async (trx) => {
    const row = await lockByKey(trx, key);
    if (!row) throw new AppError('NOT_FOUND', `payment ${key} not found`);
    if (CAPTURED.includes(row.status)) return { done: toPayment(row) };
    paymentMachine.assert(row.status as PaymentStatus, 'completed');
    const provider = deps.providers.get(row.provider);
    const operationId = await startOperation(trx, {
      tenantId,
      paymentId: row.id,
      kind: 'capture',
      key: providerKey,
      amount: Number(row.amount),
    });
    return { row, provider, operationId };
  });
  if (start.done) return start.done;
  const { row, provider, operationId } = start;

  const result: CaptureResult = await callProvider(deps, tenantId, operationId, signal, () =>
    provider.capture(
      {
        merchantId: tenantId,
        idempotencyKey: providerKey,
        transactionId: row.provider_transaction_id ?? '',
        amount: Number(row.amount),
      },
      signal,
    ),
  );

  const payment = await withTenant(deps.db, tenantId, async (trx) => {
    await finishOperation(trx, operationId, result.status, result.status === 'error' ? result.message : null);
    const locked = await lockByKey(trx, key);
    if (!locked) throw new Error(`payment ${key} vanished`);
    if (result.status !== 'captured' || locked.status !== 'authorized') return toPayment(locked);
    const after = toPayment(await transition(trx, locked, 'completed', { processed: true }));
    await publish(deps.events, trx, tenantId, [paymentEvent('completed', after)], meta);
    return after;
  });
  if (result.status === 'error' && !CAPTURED.includes(payment.status)) {
    throw new AppError('PAYMENT_PROVIDER_ERROR', `the provider refused the capture: ${result.message}`, {
      paymentId: payment.id,
      status: payment.status,
    });
  }
  return payment;
}
