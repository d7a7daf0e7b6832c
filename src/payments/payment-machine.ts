import { stateMachine } from '../platform/state-machine.ts';

export const PAYMENT_STATUSES = [
  'pending',
  'processing',
  'authorized',
  'completed',
  'failed',
  'voided',
  'refunded',
  'partially_refunded',
] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** Why a failed (or voided) payment is where it is. */
export const FAILURE_CODES = [
  'card_declined',
  'insufficient_funds',
  'processing_error',
  'timeout',
  'voided',
  'manual',
] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];

/**
 * The payment lifecycle. processing: a provider call or a pending authorization is in flight;
 * completed: captured. failed, voided and refunded are final.
 */
export const paymentMachine = stateMachine<PaymentStatus>('payment', {
  pending: ['processing', 'failed'],
  processing: ['authorized', 'failed'],
  authorized: ['completed', 'voided', 'failed'],
  completed: ['partially_refunded', 'refunded'],
  partially_refunded: ['partially_refunded', 'refunded'],
  failed: [],
  voided: [],
  refunded: [],
});
