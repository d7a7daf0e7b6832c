import type { Selectable } from 'kysely';
import { isoTime } from '../platform/db/index.ts';
import type { PaymentStatus } from './payment-machine.ts';
import type { OperationKind, OperationOutcome, OperationsTable, PaymentsTable } from './tables.ts';

/** A payment as the API and the events show it (money in minor units of currency). */
export type Payment = {
  id: string;
  orderId: string;
  key: string;
  amount: number;
  currency: string;
  status: PaymentStatus;
  provider: string;
  providerTransactionId: string | null;
  refundedAmount: number;
  failureCode: string | null;
  failureMessage: string | null;
  processedAt: string | null;
  createdAt: string;
  updatedAt: string;
};

/** One call made to the provider for a payment (or one webhook it sent), as staff see it. */
export type PaymentOperation = {
  id: string;
  kind: OperationKind;
  source: 'call' | 'webhook';
  idempotencyKey: string;
  amount: number | null;
  outcome: OperationOutcome;
  detail: string | null;
  createdAt: string;
  finishedAt: string | null;
};

export type PaymentRow = Selectable<PaymentsTable>;

export function toPayment(row: PaymentRow): Payment {
  return {
    id: row.id,
    orderId: row.order_id,
    key: row.key,
    amount: Number(row.amount),
    currency: row.currency,
    status: row.status as PaymentStatus,
    provider: row.provider,
    providerTransactionId: row.provider_transaction_id,
    refundedAmount: Number(row.refunded_amount),
    failureCode: row.failure_code,
    failureMessage: row.failure_message,
    processedAt: row.processed_at === null ? null : isoTime(row.processed_at),
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}

export function toOperation(row: Selectable<OperationsTable>): PaymentOperation {
  return {
    id: row.id,
    kind: row.kind,
    source: row.source,
    idempotencyKey: row.idempotency_key,
    amount: row.amount === null ? null : Number(row.amount),
    outcome: row.outcome,
    detail: row.detail,
    createdAt: isoTime(row.created_at),
    finishedAt: row.finished_at === null ? null : isoTime(row.finished_at),
  };
}
