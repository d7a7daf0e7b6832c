import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { finishOperation } from './call-store.ts';
import type { PaymentsDeps } from './deps.ts';
import { paymentEvent, publish } from './payment-events.ts';
import { type FailureCode, type PaymentStatus, paymentMachine } from './payment-machine.ts';
import { lockByKey, providerKeys, transition } from './payment-store.ts';
import { callProvider, startCall } from './provider-call.ts';
import type { VoidResult } from './providers/provider.ts';
import type { PaymentsTrx } from './tables.ts';
import { type Payment, type PaymentRow, toPayment } from './views.ts';

/** The status a voided payment ends in: an authorization becomes voided; one never learnt, failed. */
const endOf = (status: string): PaymentStatus => (status === 'authorized' ? 'voided' : 'failed');

/**
 * Voids the authorization of the payment of `key`, publishing mercato.payment.voided: an
 * authorized payment becomes voided; a processing one (its outcome unknown, e.g. the call was
 * aborted) is voided at the provider by the authorization's idempotency key and becomes failed
 * with failureCode (Default: voided); a pending one, never sent, fails without a call. Failed and
 * voided ones are answered as they are; a captured one is 409 ILLEGAL_TRANSITION (refund it).
 * undefined when no payment has the key.
 */
export async function voidPayment(
  deps: PaymentsDeps,
  tenantId: string,
  key: string,
  reason: string,
  signal: AbortSignal,
  meta?: EventMeta,
  failureCode: FailureCode = 'voided',
): Promise<Payment | undefined> {
  signal.throwIfAborted();
  const finish = async (trx: PaymentsTrx, row: PaymentRow) => {
    const to = endOf(row.status);
    const failure = { code: to === 'voided' ? ('voided' as const) : failureCode, message: reason };
    const after = toPayment(await transition(trx, row, to, { failure }));
    await publish(deps.events, trx, tenantId, [paymentEvent('voided', after)], meta);
    return after;
  };
  const start = await withTenant(deps.db, tenantId, async (trx) => {
    const row = await lockByKey(trx, key);
    if (!row) return { done: undefined };
    if (row.status === 'failed' || row.status === 'voided') return { done: toPayment(row) };
    // Never sent to the provider (processPayment moves it to processing first): nothing to release.
    if (row.status === 'pending') return { done: await finish(trx, row) };
    paymentMachine.assert(row.status as PaymentStatus, endOf(row.status));
    return startCall(deps, trx, { tenantId, key, row, kind: 'void', providerKey: providerKeys.void(key) });
  });
  if ('done' in start) return start.done;
  const { row, provider, operationId } = start;

  const result: VoidResult = await callProvider(deps, tenantId, operationId, signal, () =>
    provider.void(
      {
        merchantId: tenantId,
        idempotencyKey: providerKeys.void(key),
        authorizationKey: providerKeys.authorize(key),
        transactionId: row.provider_transaction_id,
      },
      signal,
    ),
  );

  const payment = await withTenant(deps.db, tenantId, async (trx) => {
    await finishOperation(
      trx,
      operationId,
      result.status,
      result.status === 'error' ? result.message : reason,
    );
    const locked = await lockByKey(trx, key);
    if (!locked) throw new Error(`payment ${key} vanished`);
    const open = locked.status === 'processing' || locked.status === 'authorized';
    if (result.status !== 'voided' || !open) return toPayment(locked);
    return finish(trx, locked);
  });
  if (result.status === 'error') {
    // `refused: 'now'`: the provider answered (a call that could not reach it says nothing of the kind).
    throw new AppError('PAYMENT_PROVIDER_ERROR', `the provider refused the void: ${result.message}`, {
      paymentId: payment.id,
      status: payment.status,
      refused: 'now',
    });
  }
  return payment;
}

/**
 * Staff's "fail": a pending payment (never sent) fails as manual, publishing
 * mercato.payment.failed; a processing or authorized one is voided (voidPayment); a failed or
 * voided one is answered as it is; a captured one is 409 ILLEGAL_TRANSITION.
 */
export async function failPayment(
  deps: PaymentsDeps,
  tenantId: string,
  key: string,
  reason: string,
  signal: AbortSignal,
  meta?: EventMeta,
): Promise<Payment> {
  const failed = await withTenant(deps.db, tenantId, async (trx) => {
    const row = await lockByKey(trx, key);
    if (!row) throw new AppError('NOT_FOUND', `payment ${key} not found`);
    if (row.status === 'failed' || row.status === 'voided') return toPayment(row);
    if (row.status !== 'pending') return undefined;
    const after = toPayment(
      await transition(trx, row, 'failed', { failure: { code: 'manual', message: reason } }),
    );
    await publish(deps.events, trx, tenantId, [paymentEvent('failed', after)], meta);
    return after;
  });
  if (failed) return failed;
  const voided = await voidPayment(deps, tenantId, key, reason, signal, meta, 'manual');
  if (!voided) throw new AppError('NOT_FOUND', `payment ${key} not found`);
  return voided;
}
