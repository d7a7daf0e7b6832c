import { withTenant } from '../platform/db/index.ts';
import type { DomainEvent, EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { createProcessing, finishCallAndMove } from './call-store.ts';
import type { PaymentsDeps } from './deps.ts';
import { paymentEvent, publish } from './payment-events.ts';
import type { FailureCode } from './payment-machine.ts';
import { ensurePayment, lockByKey, type NewPayment, providerKeys, transition } from './payment-store.ts';
import { callProvider, type StartedCall, startCall } from './provider-call.ts';
import type { AuthorizeResult, DeclineCode } from './providers/provider.ts';
import type { PaymentsTrx } from './tables.ts';
import { type Payment, type PaymentRow, toPayment } from './views.ts';

export type AuthorizeOutcome =
  | { outcome: 'authorized'; payment: Payment }
  /** Settled later by the provider's webhook, which publishes mercato.payment.authorized or .failed. */
  | { outcome: 'pending'; payment: Payment }
  | { outcome: 'declined'; payment: Payment; code: DeclineCode; message: string }
  | { outcome: 'error'; payment: Payment; message: string };

const DECLINES: readonly string[] = ['card_declined', 'insufficient_funds'] satisfies DeclineCode[];

/** What a payment that is no longer waiting for its authorization came to. */
export function outcomeOf(row: PaymentRow): AuthorizeOutcome {
  const payment = toPayment(row);
  switch (payment.status) {
    case 'pending':
    case 'processing':
      return { outcome: 'pending', payment };
    case 'failed':
    case 'voided': {
      const message = payment.failureMessage ?? `payment ${payment.status}`;
      if (payment.failureCode !== null && DECLINES.includes(payment.failureCode)) {
        return { outcome: 'declined', payment, code: payment.failureCode as DeclineCode, message };
      }
      return { outcome: 'error', payment, message };
    }
    default:
      return { outcome: 'authorized', payment };
  }
}

/** Creates the payment of input.key (pending, publishing mercato.payment.initiated) or finds the same one. */
export function initiatePayment(
  deps: PaymentsDeps,
  input: NewPayment,
  meta?: EventMeta,
  /** Runs first in the payment's transaction (a check that may refuse it). */
  guard?: (trx: PaymentsTrx) => Promise<void>,
): Promise<PaymentRow> {
  return withTenant(deps.db, input.tenantId, async (trx) => {
    await guard?.(trx);
    const { row, created } = await ensurePayment(trx, input);
    if (created)
      await publish(deps.events, trx, input.tenantId, [paymentEvent('initiated', toPayment(row))], meta);
    return row;
  });
}

/** The payment change an authorization result makes to a processing payment. */
function applyResult(result: AuthorizeResult) {
  switch (result.status) {
    case 'authorized':
      return {
        to: 'authorized' as const,
        change: { providerTransactionId: result.transactionId, processed: true },
      };
    case 'pending':
      return { to: undefined, change: { providerTransactionId: result.transactionId } };
    case 'declined':
      return {
        to: 'failed' as const,
        change: { failure: { code: result.code as FailureCode, message: result.message }, processed: true },
      };
    case 'error':
      return {
        to: 'failed' as const,
        change: { failure: { code: 'processing_error' as const, message: result.message }, processed: true },
      };
  }
}

/**
 * An authorization prepared in a transaction: the payment processing and the provider call's
 * operation started, or `done` when the payment is already past authorization (no call needed).
 */
export type AuthorizationCall = { done: AuthorizeOutcome } | StartedCall;

/**
 * In trx: creates the payment of `initiate` (or finds the same one), or locks the payment of
 * `key`; moves a pending payment to processing and starts the provider call's operation. One
 * already processing (a call in flight, perhaps in a crashed process, or a pending authorization)
 * is asked again under the same idempotency key, which never authorizes twice.
 */
export async function startAuthorization(
  deps: PaymentsDeps,
  trx: PaymentsTrx,
  tenantId: string,
  key: string,
  initiate?: NewPayment,
  meta?: EventMeta,
): Promise<AuthorizationCall> {
  let row: PaymentRow | undefined;
  if (initiate) {
    // The usual case, a new payment: created processing with its call started, one statement.
    const provider = deps.providers.get(initiate.provider);
    const operationId = uuidv7();
    const providerKey = providerKeys.authorize(key);
    const created = await createProcessing(trx, initiate, {
      id: operationId,
      kind: 'authorize',
      key: providerKey,
    });
    if (created) {
      const initiated = toPayment({ ...created, status: 'pending' });
      await publish(deps.events, trx, tenantId, [paymentEvent('initiated', initiated)], meta);
      return { key, row: created, provider, operationId };
    }
    row = (await ensurePayment(trx, initiate)).row;
  } else {
    row = await lockByKey(trx, key);
  }
  if (!row) throw new AppError('NOT_FOUND', `payment ${key} not found`);
  if (row.status !== 'pending' && row.status !== 'processing') return { done: outcomeOf(row) };
  if (row.status === 'pending') row = await transition(trx, row, 'processing');
  return startCall(deps, trx, {
    tenantId,
    key,
    row,
    kind: 'authorize',
    providerKey: providerKeys.authorize(key),
  });
}

/** The provider call of a started authorization (see callProvider for a call that throws). */
export function callAuthorization(
  deps: PaymentsDeps,
  tenantId: string,
  call: StartedCall,
  signal: AbortSignal,
): Promise<AuthorizeResult> {
  const { row, provider } = call;
  return callProvider(deps, tenantId, call.operationId, signal, () =>
    provider.authorize(
      {
        merchantId: tenantId,
        idempotencyKey: providerKeys.authorize(call.key),
        amount: Number(row.amount),
        currency: row.currency,
        token: row.token,
      },
      signal,
    ),
  );
}

/** In trx: records the provider's answer on the operation and the payment (unless settled meanwhile), with its event. */
export async function finishAuthorization(
  deps: PaymentsDeps,
  trx: PaymentsTrx,
  tenantId: string,
  call: StartedCall,
  result: AuthorizeResult,
  meta?: EventMeta,
  hints?: DomainEvent['hints'],
): Promise<AuthorizeOutcome> {
  const detail =
    result.status === 'declined' ? result.code : result.status === 'error' ? result.message : null;
  const { to, change } = applyResult(result);
  const operation = { id: call.operationId, outcome: result.status, detail };
  const after = await finishCallAndMove(trx, operation, call.key, 'processing', { status: to, ...change });
  // Settled meanwhile (another caller, a webhook or a void): that stands.
  if (!after) {
    const locked = await lockByKey(trx, call.key);
    if (!locked) throw new Error(`payment ${call.key} vanished`);
    return outcomeOf(locked);
  }
  const payment = toPayment(after);
  if (to) await publish(deps.events, trx, tenantId, [{ ...paymentEvent(to, payment), hints }], meta);
  if (result.status === 'declined')
    return { outcome: 'declined', payment, code: result.code, message: result.message };
  if (result.status === 'error') return { outcome: 'error', payment, message: result.message };
  return { outcome: result.status, payment };
}

/**
 * Authorizes the payment of `key` with its provider (creating it first from `initiate`, in the
 * same transaction): startAuthorization, the call, finishAuthorization, each of the two
 * database parts in a transaction of its own. A payment past authorization answers its outcome
 * without a call. An aborted call leaves the payment processing (its outcome unknown: void it)
 * and rejects with the signal's reason.
 */
export async function processPayment(
  deps: PaymentsDeps,
  tenantId: string,
  key: string,
  signal: AbortSignal,
  meta?: EventMeta,
  initiate?: NewPayment,
): Promise<AuthorizeOutcome> {
  signal.throwIfAborted();
  const call = await withTenant(deps.db, tenantId, (trx) =>
    startAuthorization(deps, trx as PaymentsTrx, tenantId, key, initiate, meta),
  );
  if (call.done) return call.done;
  const result = await callAuthorization(deps, tenantId, call, signal);
  return withTenant(deps.db, tenantId, (trx) =>
    finishAuthorization(deps, trx as PaymentsTrx, tenantId, call, result, meta),
  );
}
