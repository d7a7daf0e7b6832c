import { type Selectable, sql } from 'kysely';
import { Type } from 'typebox';
import { isoTime } from '../platform/db/iso-time.ts';
import { Nullable } from '../platform/http/index.ts';
import {
  CATEGORIES,
  type Category,
  type ExceptionStatus,
  type ExceptionsTable,
  INTERFACE_TYPES,
  type InterfaceType,
  SEVERITIES,
  type Severity,
  type SourceRef,
  STATUSES,
} from './tables.ts';

/** Every column the view shows: never the payload (up to the namespace's limit) nor the search vector. */
export const VIEW_COLUMN_NAMES = [
  'id',
  'tenant_id',
  'transaction_id',
  'external_id',
  'interface_type',
  'event_type',
  'operation',
  'reason',
  'category',
  'severity',
  'status',
  'customer_id',
  'location_code',
  'order_id',
  'amount',
  'currency',
  'retryable',
  'retry_count',
  'retry_limit',
  'correlation_id',
  'causation_id',
  'source_ref',
  'group_id',
  'occurrences',
  'first_seen',
  'last_seen',
  'acknowledged_by',
  'acknowledged_at',
  'acknowledge_note',
  'resolved_by',
  'resolved_at',
  'resolution',
  'resolve_note',
  'created_at',
  'updated_at',
] as const;

/** VIEW_COLUMN_NAMES as a select list, qualified by `table` when given. */
export const viewColumns = (table?: string) =>
  sql.raw(VIEW_COLUMN_NAMES.map((c) => (table ? `${table}.${c}` : c)).join(', '));

/** An exception as read from exceptions.exceptions. */
export type ExceptionRow = Selectable<ExceptionsTable>;

/** 000's InterfaceException as the API shows it. */
export type ExceptionView = {
  id: string;
  transactionId: string;
  externalId: string | null;
  interfaceType: InterfaceType;
  eventType: string;
  operation: string;
  reason: string;
  category: Category;
  severity: Severity;
  status: ExceptionStatus;
  customerId: string | null;
  locationCode: string | null;
  orderId: string | null;
  amount: number | null;
  currency: string | null;
  retryable: boolean;
  retryCount: number;
  retryLimit: number;
  correlationId: string | null;
  causationId: string | null;
  sourceRef: SourceRef;
  groupId: string;
  occurrences: number;
  firstSeen: string;
  lastSeen: string;
  acknowledgedBy: string | null;
  acknowledgedAt: string | null;
  acknowledgeNote: string | null;
  resolvedBy: string | null;
  resolvedAt: string | null;
  resolution: string | null;
  resolveNote: string | null;
  createdAt: string;
  updatedAt: string;
};

const time = (value: Date | string | null) => (value === null ? null : isoTime(value));

/** The columns the view shows: a row read without its payload and search vector will do. */
export type ViewedRow = Omit<ExceptionRow, 'payload' | 'search'>;

export function toView(row: ViewedRow): ExceptionView {
  return {
    id: row.id,
    transactionId: row.transaction_id,
    externalId: row.external_id,
    interfaceType: row.interface_type,
    eventType: row.event_type,
    operation: row.operation,
    reason: row.reason,
    category: row.category,
    severity: row.severity,
    status: row.status,
    customerId: row.customer_id,
    locationCode: row.location_code,
    orderId: row.order_id,
    amount: row.amount === null ? null : Number(row.amount),
    currency: row.currency,
    retryable: row.retryable,
    retryCount: row.retry_count,
    retryLimit: row.retry_limit,
    correlationId: row.correlation_id,
    causationId: row.causation_id,
    sourceRef: row.source_ref,
    groupId: row.group_id,
    occurrences: row.occurrences,
    firstSeen: isoTime(row.first_seen),
    lastSeen: isoTime(row.last_seen),
    acknowledgedBy: row.acknowledged_by,
    acknowledgedAt: time(row.acknowledged_at),
    acknowledgeNote: row.acknowledge_note,
    resolvedBy: row.resolved_by,
    resolvedAt: time(row.resolved_at),
    resolution: row.resolution,
    resolveNote: row.resolve_note,
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}

const Text = Type.String();
const OptionalText = Nullable(Type.String());
const Time = Type.String({ format: 'date-time' });

/** The response schema of ExceptionView. */
export const ExceptionSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  transactionId: Text,
  externalId: OptionalText,
  interfaceType: Type.Enum([...INTERFACE_TYPES]),
  eventType: Text,
  operation: Text,
  reason: Text,
  category: Type.Enum([...CATEGORIES]),
  severity: Type.Enum([...SEVERITIES]),
  status: Type.Enum([...STATUSES]),
  customerId: OptionalText,
  locationCode: OptionalText,
  orderId: OptionalText,
  amount: Nullable(Type.Integer()),
  currency: OptionalText,
  retryable: Type.Boolean(),
  retryCount: Type.Integer(),
  retryLimit: Type.Integer(),
  correlationId: OptionalText,
  causationId: OptionalText,
  sourceRef: Type.Object({ kind: Text }, { additionalProperties: true }),
  groupId: Type.String({ format: 'uuid' }),
  occurrences: Type.Integer(),
  firstSeen: Time,
  lastSeen: Time,
  acknowledgedBy: OptionalText,
  acknowledgedAt: Nullable(Time),
  acknowledgeNote: OptionalText,
  resolvedBy: OptionalText,
  resolvedAt: Nullable(Time),
  resolution: OptionalText,
  resolveNote: OptionalText,
  createdAt: Time,
  updatedAt: Time,
});
