import type { ColumnType, Kysely, Transaction } from 'kysely';

type Timestamp = ColumnType<Date | string, Date | string | undefined, Date | string>;
/** A jsonb column: read parsed, written as JSON text. */
type Json<T> = ColumnType<T, string | null | undefined, string | null>;
/** A bigint column: pg returns int8 as text, PGlite as a number. */
type Bigint = ColumnType<string | number, number, number>;

export const PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const;
/** 002's OrderPriority: the payment queue takes higher priorities' orders first. */
export type Priority = (typeof PRIORITIES)[number];

export const ADMISSION_STATUSES = ['admitted', 'paying', 'paid', 'released'] as const;
export type AdmissionStatus = (typeof ADMISSION_STATUSES)[number];

export const RELEASE_REASONS = [
  'payment_declined',
  'payment_error',
  'timeout',
  'validation',
  'out_of_stock',
  'cancelled',
  'reconciled',
] as const;
export type ReleaseReason = (typeof RELEASE_REASONS)[number];

/** The lifecycle events a campaign announced (each once). */
export type Announced = { started?: string; soldOut?: string; ended?: string };

/** Migration 0029. */
export type CampaignsTable = {
  id: string;
  tenant_id: string;
  name: string;
  variant_id: string;
  product_id: string;
  sku: string;
  title: string;
  variant_title: string;
  currency: string;
  sale_price: Bigint;
  units: number;
  per_customer_limit: number;
  payment_window_minutes: number;
  priority: Priority;
  starts_at: Timestamp;
  ends_at: Timestamp;
  admitted: ColumnType<number, number | undefined, number>;
  sold: ColumnType<number, number | undefined, number>;
  released: ColumnType<number, number | undefined, number>;
  cancelled_at: Timestamp | null;
  cancel_reason: string | null;
  settled_at: Timestamp | null;
  announced: Json<Announced>;
  created_by: string;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type AdmissionsTable = {
  order_id: string;
  tenant_id: string;
  campaign_id: string;
  customer_id: string;
  idempotency_key: string;
  request_hash: string;
  quantity: number;
  status: AdmissionStatus;
  payment: Json<{ provider: string; token: string } | null>;
  pay_by: Timestamp;
  release_reason: ReleaseReason | null;
  admitted_at: Timestamp;
  updated_at: Timestamp;
};

export type FlashSalesTables = {
  'flash_sales.campaigns': CampaignsTable;
  'flash_sales.admissions': AdmissionsTable;
};
export type FlashSalesDb = Kysely<FlashSalesTables>;
export type FlashSalesTrx = Transaction<FlashSalesTables>;
