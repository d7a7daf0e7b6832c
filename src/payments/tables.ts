import type { ColumnType, Kysely, Transaction } from 'kysely';

type Timestamp = ColumnType<Date | string, Date | string | undefined, Date | string>;
/** A bigint column of minor units: pg returns int8 as text, PGlite as a number. */
type Money = ColumnType<string | number, number, number>;
type MoneyOrNull = ColumnType<string | number | null, number | null | undefined, number | null>;

/** Migration 0025: payments.payments. */
export type PaymentsTable = {
  id: string;
  tenant_id: string;
  order_id: string;
  key: string;
  amount: Money;
  currency: string;
  status: string;
  provider: string;
  token: string;
  provider_transaction_id: string | null;
  refunded_amount: Money;
  failure_code: string | null;
  failure_message: string | null;
  processed_at: ColumnType<Date | string | null, Date | string | null | undefined, Date | string | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type OperationKind = 'authorize' | 'capture' | 'void' | 'refund';
export type OperationOutcome =
  | 'started'
  | 'authorized'
  | 'pending'
  | 'declined'
  | 'error'
  | 'aborted'
  | 'captured'
  | 'voided'
  | 'refunded'
  | 'failed';

export type OperationsTable = {
  id: string;
  tenant_id: string;
  payment_id: string;
  kind: OperationKind;
  source: 'call' | 'webhook';
  idempotency_key: string;
  amount: MoneyOrNull;
  outcome: OperationOutcome;
  detail: string | null;
  created_at: Timestamp;
  finished_at: ColumnType<Date | string | null, Date | string | null | undefined, Date | string | null>;
};

export type RefundsTable = {
  id: string;
  tenant_id: string;
  payment_id: string;
  refund_key: string;
  amount: Money;
  reason: string;
  status: 'pending' | 'succeeded' | 'failed';
  provider_refund_id: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type WebhookDeliveriesTable = {
  tenant_id: string;
  id: string;
  payment_id: string;
  received_at: Timestamp;
};

export type PaymentsTables = {
  'payments.payments': PaymentsTable;
  'payments.operations': OperationsTable;
  'payments.refunds': RefundsTable;
  'payments.webhook_deliveries': WebhookDeliveriesTable;
};

export type PaymentsDb = Kysely<PaymentsTables>;
/** A transaction of one tenant (withTenant) over the payments tables. */
export type PaymentsTrx = Transaction<PaymentsTables>;
