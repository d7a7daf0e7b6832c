import { AppError } from '../platform/http/index.ts';
import type { SagaFailure } from './tables.ts';

/** How an attempt of a step came out: done (maybe waiting on the provider), or failed. */
export type StepOutcome =
  | { ok: true; output?: unknown; pending?: boolean }
  | { ok: false; failure: SagaFailure; retryable: boolean };

/** The order's failure reason and the problem code POST /orders answers with, per failure. */
export const FAILURES = {
  out_of_stock: 'OUT_OF_STOCK',
  payment_declined: 'PAYMENT_DECLINED',
  payment_error: 'PAYMENT_PROVIDER_ERROR',
  timeout: 'CHECKOUT_TIMEOUT',
  validation: 'CHECKOUT_INVALID',
} as const;
export type FailureReason = keyof typeof FAILURES;

export const failed = (reason: FailureReason, message: string, retryable = false): StepOutcome => ({
  ok: false,
  failure: { reason, code: FAILURES[reason], message },
  retryable,
});

/**
 * An error thrown by a step: a timeout when the step's deadline aborted it, a validation failure
 * for an AppError the step did not expect (bad input will not get better), else retryable (a
 * database or network hiccup).
 */
export function outcomeOfError(error: unknown, signal: AbortSignal): StepOutcome {
  if (signal.aborted) return failed('timeout', 'the step did not finish before its deadline');
  if (error instanceof AppError) {
    if (error.status >= 500) return failed('payment_error', error.message, true);
    return failed('validation', error.message);
  }
  const message = error instanceof Error ? error.message : String(error);
  return { ok: false, failure: { reason: 'internal', code: 'INTERNAL', message }, retryable: true };
}
