import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { finishCallAndMove, finishOperation, lockAndStartCall } from './call-store.ts';
import type { PaymentsDeps } from './deps.ts';
import { paymentEvent, publish } from './payment-events.ts';
import { type PaymentStatus, paymentMachine } from './payment-machine.ts';
import { findByKey, lockByKey, providerKeys } from './payment-store.ts';
import { callProvider, type StartedCall } from './provider-call.ts';
import type { CaptureResult } from './providers/provider.ts';
import type { PaymentsTrx } from './tables.ts';
import { type Payment, toPayment } from './views.ts';

const CAPTURED: readonly string[] = ['completed', 'partially_refunded', 'refunded'];

/** A capture prepared in a transaction: its operation started, or `done` when the payment is already captured. */
export type CaptureCall = { done: Payment } | StartedCall;

/**
 * In trx: locks the payment of `key`; a captured one is done, an authorized one gets the capture's
 * operation started; any other status is 409 ILLEGAL_TRANSITION.
 */
export async function startCapture(deps: PaymentsDeps, trx: PaymentsTrx, key: string): Promise<CaptureCall> {
  const operationId = uuidv7();
  const providerKey = providerKeys.capture(key);
  const locked = await lockAndStartCall(trx, key, 'authorized', {
    id: operationId,
    kind: 'capture',
    key: providerKey,
  });
  if (!locked) throw new AppError('NOT_FOUND', `payment ${key} not found`);
  const { row, started } = locked;
  if (started) return { key, row, provider: deps.providers.get(row.provider), operationId };
  if (CAPTURED.includes(row.status)) return { done: toPayment(row) };
  paymentMachine.assert(row.status as PaymentStatus, 'completed');
  throw new Error(`payment ${key} is ${row.status}: no capture started`);
}

/** The provider call of a started capture, under a key derived from the payment's (one capture, however often called). */
export function callCapture(
  deps: PaymentsDeps,
  tenantId: string,
  call: StartedCall,
  signal: AbortSignal,
): Promise<CaptureResult> {
  const { row, provider } = call;
  return callProvider(deps, tenantId, call.operationId, signal, () =>
    provider.capture(
      {
        merchantId: tenantId,
        idempotencyKey: providerKeys.capture(call.key),
        transactionId: row.provider_transaction_id ?? '',
        amount: Number(row.amount),
      },
      signal,
    ),
  );
}

/**
 * In trx: records the provider's answer; a capture completes the payment (publishing
 * mercato.payment.completed). `refused`: the provider's refusal, the payment left authorized.
 */
export async function finishCapture(
  deps: PaymentsDeps,
  trx: PaymentsTrx,
  tenantId: string,
  call: StartedCall,
  result: CaptureResult,
  meta?: EventMeta,
): Promise<{ payment: Payment; refused?: string }> {
  const operation = {
    id: call.operationId,
    outcome: result.status,
    detail: result.status === 'error' ? result.message : null,
  };
  if (result.status === 'captured') {
    const change = { status: 'completed' as const, processed: true };
    const after = await finishCallAndMove(trx, operation, call.key, 'authorized', change);
    if (after) {
      const payment = toPayment(after);
      await publish(deps.events, trx, tenantId, [paymentEvent('completed', payment)], meta);
      return { payment };
    }
  } else {
    await finishOperation(trx, operation.id, operation.outcome, operation.detail);
  }
  // Refused, or no longer authorized (captured or settled meanwhile): the payment as it stands.
  const locked = await lockByKey(trx, call.key);
  if (!locked) throw new Error(`payment ${call.key} vanished`);
  const payment = toPayment(locked);
  return result.status === 'error' && !CAPTURED.includes(payment.status)
    ? { payment, refused: result.message }
    : { payment };
}

/** The provider's refusal of a capture as the API answers it. */
export const captureRefused = (payment: Payment, message: string) =>
  new AppError('PAYMENT_PROVIDER_ERROR', `the provider refused the capture: ${message}`, {
    paymentId: payment.id,
    status: payment.status,
  });

/**
 * Captures the authorized payment of `key` in full (completed, publishing mercato.payment.completed):
 * startCapture, the call, finishCapture, each database part in a transaction of its own. One
 * already captured is answered as it is; any other status is 409 ILLEGAL_TRANSITION. A provider
 * refusal is 502 PAYMENT_PROVIDER_ERROR and leaves the payment authorized.
 */
export async function capturePayment(
  deps: PaymentsDeps,
  tenantId: string,
  key: string,
  signal: AbortSignal,
  meta?: EventMeta,
): Promise<Payment> {
  signal.throwIfAborted();
  const call = await withTenant(deps.db, tenantId, (trx) => startCapture(deps, trx as PaymentsTrx, key));
  if (call.done) return call.done;
  const result = await callCapture(deps, tenantId, call, signal);
  const { payment, refused } = await withTenant(deps.db, tenantId, (trx) =>
    finishCapture(deps, trx as PaymentsTrx, tenantId, call, result, meta),
  );
  if (refused !== undefined) throw captureRefused(payment, refused);
  return payment;
}

/**
 * A capture of the payment of `key` whose answer Mercato never recorded (the process died during
 * the call, or the call failed or was cut short) is asked for again under the capture's own key:
 * the provider answers what it did, so a capture it made completes the payment (never a second
 * capture); a refusal is 502 as capturePayment's. Undefined, asking nothing, when the payment is
 * not authorized or no capture of it was ever started. For a caller whose void the provider
 * refused (a charge it captured cannot be voided: it is refunded).
 */
export async function resumeCapture(
  deps: PaymentsDeps,
  tenantId: string,
  key: string,
  signal: AbortSignal,
  meta?: EventMeta,
): Promise<Payment | undefined> {
  const started = await withTenant(deps.db, tenantId, async (trx) => {
    const row = await findByKey(trx as PaymentsTrx, key);
    if (row?.status !== 'authorized') return false;
    const capture = await (trx as PaymentsTrx)
      .selectFrom('payments.operations')
      .select('id')
      .where('payment_id', '=', row.id)
      .where('kind', '=', 'capture')
      .where('source', '=', 'call')
      .limit(1)
      .executeTakeFirst();
    return capture !== undefined;
  });
  if (!started) return undefined;
  return capturePayment(deps, tenantId, key, signal, meta);
}
