/**
 * What Mercato asks of a payment service provider (PSP). Every call carries an idempotency key:
 * the same key again answers the first result and never charges twice (also from another process
 * or after a crash). Answers are values (a decline is returned, not thrown); only an abort of the
 * signal rejects, with the signal's reason. The merchant is the tenant: a PSP keeps one account
 * per merchant and its keys are scoped to it.
 */
export type PaymentProvider = {
  readonly name: string;
  authorize(input: AuthorizeInput, signal: AbortSignal): Promise<AuthorizeResult>;
  capture(input: CaptureInput, signal: AbortSignal): Promise<CaptureResult>;
  void(input: VoidInput, signal: AbortSignal): Promise<VoidResult>;
  refund(input: RefundInput, signal: AbortSignal): Promise<RefundResult>;
};

type Call = { merchantId: string; idempotencyKey: string };

export type AuthorizeInput = Call & { amount: number; currency: string; token: string };

export type DeclineCode = 'card_declined' | 'insufficient_funds';

export type AuthorizeResult =
  | { status: 'authorized'; transactionId: string }
  /** Settled later by a signed webhook. */
  | { status: 'pending'; transactionId: string }
  | { status: 'declined'; code: DeclineCode; message: string }
  | { status: 'error'; message: string };

/** Captures the authorization in full. */
export type CaptureInput = Call & { transactionId: string; amount: number };
export type CaptureResult = { status: 'captured' } | { status: 'error'; message: string };

/**
 * Releases an authorization, found by the idempotency key it was made with, so it can be voided
 * even when its answer never arrived. A void that finds none still holds: an authorization with
 * that key arriving later is refused.
 */
export type VoidInput = Call & { authorizationKey: string; transactionId?: string | null | undefined };
export type VoidResult = { status: 'voided' } | { status: 'error'; message: string };

export type RefundInput = Call & { transactionId: string; amount: number };
export type RefundResult = { status: 'refunded'; refundId: string } | { status: 'error'; message: string };
