import type { Transaction } from 'kysely';
import { lockNamed, withTenant } from '../platform/db/index.ts';
import type { DomainEvent, EventMeta } from '../platform/events/index.ts';
import { type FieldError, validationFailed } from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import {
  type AuthorizationCall,
  type AuthorizeOutcome,
  callAuthorization,
  finishAuthorization,
  processPayment,
  startAuthorization,
} from './authorize.ts';
import {
  type CaptureCall,
  callCapture,
  capturePayment,
  finishCapture,
  resumeCapture,
  startCapture,
} from './capture.ts';
import type { PaymentsDeps } from './deps.ts';
import { orderLock } from './order-fit.ts';
import { findByKey, listByOrder, type NewPayment } from './payment-store.ts';
import type { StartedCall } from './provider-call.ts';
import type { AuthorizeResult, CaptureResult } from './providers/provider.ts';
import { holdsMoney, refundPayment } from './refund.ts';
import { type Payment, toPayment } from './views.ts';
import { voidPayment } from './void-payment.ts';

/** What an authorization is asked for: the payment to create (or find) under `key`. */
export type AuthorizeRequest = Omit<NewPayment, 'tenantId'> & { meta?: EventMeta };

export type PaymentsApi = {
  /**
   * Creates (idempotent by `key`: same key → same payment) the payment and authorizes it with the
   * provider, whose idempotency key is derived from `key`, so a call repeated after a crash never
   * authorizes twice. A payment already past authorization returns its outcome without calling
   * the provider again. An aborted signal rejects with its reason and leaves the payment
   * processing: void it.
   */
  authorize(tenantId: string, input: AuthorizeRequest, signal: AbortSignal): Promise<AuthorizeOutcome>;
  /**
   * authorize in three parts, for a caller that writes the database parts in transactions of its
   * own (the checkout saga logs its steps with them): start in `trx` (the payment created or
   * found, moved to processing, the call's operation started; `done` when no call is needed),
   * then the provider call outside any transaction, then finish in the caller's next transaction.
   */
  startAuthorization(
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx: Transaction<any>,
    tenantId: string,
    input: AuthorizeRequest,
  ): Promise<AuthorizationCall>;
  callAuthorization(tenantId: string, call: StartedCall, signal: AbortSignal): Promise<AuthorizeResult>;
  finishAuthorization(
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx: Transaction<any>,
    tenantId: string,
    call: StartedCall,
    result: AuthorizeResult,
    meta?: EventMeta,
    /** In process only, on the authorized or failed event (DomainEvent.hints). */
    hints?: DomainEvent['hints'],
  ): Promise<AuthorizeOutcome>;
  /** Captures an authorized payment in full (idempotent: a completed one is returned as it is). */
  capture(tenantId: string, paymentKey: string, signal: AbortSignal, meta?: EventMeta): Promise<Payment>;
  /** capture in three parts, as startAuthorization; `refused`: the provider refused it (the payment stays authorized). */
  // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
  startCapture(trx: Transaction<any>, tenantId: string, paymentKey: string): Promise<CaptureCall>;
  callCapture(tenantId: string, call: StartedCall, signal: AbortSignal): Promise<CaptureResult>;
  finishCapture(
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx: Transaction<any>,
    tenantId: string,
    call: StartedCall,
    result: CaptureResult,
    meta?: EventMeta,
  ): Promise<{ payment: Payment; refused?: string }>;
  /**
   * A capture of the payment whose answer was never recorded (a crash during the call) asked
   * again under its own key: the provider answers what it did (a capture it made completes the
   * payment, never a second one). Undefined, asking nothing, when the payment is not authorized
   * or no capture of it was started. The checkout's give-back calls it when a void is refused.
   */
  resumeCapture(
    tenantId: string,
    paymentKey: string,
    signal: AbortSignal,
    meta?: EventMeta,
  ): Promise<Payment | undefined>;
  /**
   * Voids the authorization made under `paymentKey`, even when Mercato never learnt its outcome
   * (tok_hang): asks the provider by the authorization's idempotency key. Idempotent. undefined
   * when no payment has that key.
   */
  void(
    tenantId: string,
    paymentKey: string,
    reason: string,
    signal: AbortSignal,
    meta?: EventMeta,
  ): Promise<Payment | undefined>;
  /** Refunds `amount` (default: all not yet refunded) of a completed payment; `refundKey` makes it idempotent. */
  refund(
    tenantId: string,
    paymentKey: string,
    input: { amount?: number; reason: string; refundKey: string },
    signal: AbortSignal,
    meta?: EventMeta,
  ): Promise<Payment>;
  byKey(tenantId: string, key: string): Promise<Payment | undefined>;
  /**
   * In the caller's transaction: the lock a staff payment's check of the order holds (order-fit.ts).
   * The checkout takes it where it turns a completed order's saga to compensating, so a staff
   * payment is either made before (and given back) or sees the saga compensating (409).
   */
  // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
  lockOrder(trx: Transaction<any>, tenantId: string, orderId: string): Promise<void>;
  byOrder(tenantId: string, orderId: string): Promise<Payment[]>;
  /**
   * In the caller's transaction of the tenant: whether a payment of the order still holds money
   * nothing is giving back (an authorization; captured money neither refunded nor held by a
   * pending refund). The checkout asks it before it closes a failed or cancelled order, and when a
   * refund of a closed order's payment failed.
   */
  // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
  holdsMoney(trx: Transaction<any>, tenantId: string, orderId: string): Promise<boolean>;
};

const KEY = /^[\x21-\x7e]{1,200}$/;
const CURRENCY = /^[A-Z]{3}$/;

/** 400 VALIDATION_FAILED listing every field of a call that does not fit. */
function check(fields: Array<[pointer: string, ok: boolean, message: string]>): void {
  const errors: FieldError[] = fields
    .filter(([, ok]) => !ok)
    .map(([pointer, , message]) => ({ in: 'body', pointer, message }));
  if (errors.length > 0) {
    throw validationFailed(errors);
  }
}

const validKey = (key: unknown): key is string => typeof key === 'string' && KEY.test(key);
const validAmount = (amount: unknown): amount is number =>
  typeof amount === 'number' && Number.isSafeInteger(amount) && amount > 0;

/** The payment an authorization request makes, checked as the routes' schemas check it. */
function newPayment(tenantId: string, input: AuthorizeRequest): NewPayment {
  check([
    ['/key', validKey(input.key), 'must be 1 to 200 visible ASCII characters'],
    ['/orderId', isUuid(input.orderId), 'must be a UUID'],
    ['/amount', validAmount(input.amount), 'must be a positive integer of minor units'],
    ['/currency', typeof input.currency === 'string' && CURRENCY.test(input.currency), 'must be ISO 4217'],
    [
      '/token',
      typeof input.token === 'string' && input.token.length >= 1 && input.token.length <= 200,
      'must be 1 to 200 characters',
    ],
  ]);
  const { meta: _meta, ...payment } = input;
  return { tenantId, ...payment };
}

/** The payments API other modules (the checkout saga) call: plain functions over deps. */
export function paymentsApi(deps: PaymentsDeps): PaymentsApi {
  const keyOnly = (key: string) =>
    check([['/key', validKey(key), 'must be 1 to 200 visible ASCII characters']]);
  return {
    async authorize(tenantId, input, signal) {
      const payment = newPayment(tenantId, input);
      deps.providers.get(input.provider);
      return processPayment(deps, tenantId, input.key, signal, input.meta, payment);
    },
    startAuthorization: async (trx, tenantId, input) =>
      startAuthorization(deps, trx, tenantId, input.key, newPayment(tenantId, input), input.meta),
    callAuthorization: (tenantId, call, signal) => callAuthorization(deps, tenantId, call, signal),
    finishAuthorization: (trx, tenantId, call, result, meta, hints) =>
      finishAuthorization(deps, trx, tenantId, call, result, meta, hints),
    startCapture(trx, _tenantId, paymentKey) {
      keyOnly(paymentKey);
      return startCapture(deps, trx, paymentKey);
    },
    callCapture: (tenantId, call, signal) => callCapture(deps, tenantId, call, signal),
    finishCapture: (trx, tenantId, call, result, meta) =>
      finishCapture(deps, trx, tenantId, call, result, meta),
    capture(tenantId, paymentKey, signal, meta) {
      keyOnly(paymentKey);
      return capturePayment(deps, tenantId, paymentKey, signal, meta);
    },
    resumeCapture(tenantId, paymentKey, signal, meta) {
      if (!validKey(paymentKey)) return Promise.resolve(undefined);
      return resumeCapture(deps, tenantId, paymentKey, signal, meta);
    },
    void(tenantId, paymentKey, reason, signal, meta) {
      if (!validKey(paymentKey)) return Promise.resolve(undefined);
      return voidPayment(deps, tenantId, paymentKey, reason.slice(0, 1000) || 'voided', signal, meta);
    },
    refund(tenantId, paymentKey, input, signal, meta) {
      keyOnly(paymentKey);
      check([
        ['/amount', input.amount === undefined || validAmount(input.amount), 'must be a positive integer'],
        [
          '/reason',
          typeof input.reason === 'string' && input.reason.length >= 1 && input.reason.length <= 500,
          'must be 1 to 500 characters',
        ],
        ['/refundKey', validKey(input.refundKey), 'must be 1 to 200 visible ASCII characters'],
      ]);
      return refundPayment(deps, tenantId, paymentKey, input, signal, meta);
    },
    async byKey(tenantId, key) {
      if (!validKey(key)) return undefined;
      const row = await withTenant(deps.db, tenantId, (trx) => findByKey(trx, key));
      return row && toPayment(row);
    },
    lockOrder: (trx, tenantId, orderId) => lockNamed(trx, orderLock(tenantId, orderId)),
    async byOrder(tenantId, orderId) {
      const rows = await withTenant(deps.db, tenantId, (trx) => listByOrder(trx, orderId));
      return rows.map(toPayment);
    },
    holdsMoney: async (trx, _tenantId, orderId) => isUuid(orderId) && holdsMoney(trx, orderId.toLowerCase()),
  };
}
