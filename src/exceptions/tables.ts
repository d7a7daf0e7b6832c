import type { ColumnType, Generated, Kysely, Transaction } from 'kysely';

type Timestamp = ColumnType<Date | string, Date | string | undefined, Date | string>;
/** A jsonb column: read parsed, written as JSON text. */
type Json<T> = ColumnType<T, string | null | undefined, string | null>;
/** A bigint column: pg returns int8 as text, PGlite as a number. */
type Bigint = ColumnType<string | number, number | undefined, number>;

export const INTERFACE_TYPES = ['ORDER', 'COLLECTION', 'DISTRIBUTION', 'VALIDATION'] as const;
export type InterfaceType = (typeof INTERFACE_TYPES)[number];

export const CATEGORIES = [
  'VALIDATION',
  'BUSINESS_RULE',
  'SYSTEM_ERROR',
  'NETWORK_ERROR',
  'TIMEOUT',
  'DUPLICATE',
  'UNKNOWN',
] as const;
export type Category = (typeof CATEGORIES)[number];

/** In increasing order: `severityRank` compares them. */
export const SEVERITIES = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const severityRank = (s: Severity): number => SEVERITIES.indexOf(s);

export const STATUSES = [
  'NEW',
  'ACKNOWLEDGED',
  'RETRY_IN_PROGRESS',
  'RETRIED_SUCCESS',
  'RETRIED_FAILED',
  'RESOLVED',
  'CLOSED',
] as const;
export type ExceptionStatus = (typeof STATUSES)[number];

/** Where an exception's payload lives and how a retry re-submits it. */
export type SourceRef =
  | { kind: 'wal-dead-letter'; namespace: string; messageId: string }
  | { kind: 'order'; orderId: string }
  | { kind: 'source'; interfaceType: InterfaceType; externalId: string | null };

export const RETRY_ACTIONS = ['requeue', 'source', 'checkout'] as const;
export type RetryAction = (typeof RETRY_ACTIONS)[number];

/** Migration 0031. */
export type GroupsTable = {
  id: string;
  tenant_id: string;
  fingerprint: string;
  interface_type: InterfaceType;
  category: Category;
  normalized_reason: string;
  severity: Severity;
  exceptions: number;
  occurrences: Bigint;
  first_seen: Timestamp;
  last_seen: Timestamp;
};

export type ExceptionsTable = {
  id: string;
  tenant_id: string;
  transaction_id: string;
  external_id: string | null;
  interface_type: InterfaceType;
  event_type: string;
  operation: string;
  reason: string;
  category: Category;
  severity: Severity;
  status: ColumnType<ExceptionStatus, ExceptionStatus | undefined, ExceptionStatus>;
  customer_id: string | null;
  location_code: string | null;
  order_id: string | null;
  amount: ColumnType<string | number | null, number | null | undefined, number | null>;
  currency: string | null;
  retryable: boolean;
  retry_count: ColumnType<number, number | undefined, number>;
  retry_limit: ColumnType<number, number | undefined, number>;
  correlation_id: string | null;
  causation_id: string | null;
  source_ref: Json<SourceRef>;
  payload: Json<unknown>;
  group_id: string;
  occurrences: ColumnType<number, number | undefined, number>;
  first_seen: Timestamp;
  last_seen: Timestamp;
  acknowledged_by: string | null;
  acknowledged_at: Timestamp | null;
  acknowledge_note: string | null;
  resolved_by: string | null;
  resolved_at: Timestamp | null;
  resolution: string | null;
  resolve_note: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  search: ColumnType<string, never, never>;
};

export type RetryAttemptsTable = {
  id: string;
  tenant_id: string;
  exception_id: string;
  attempt: number;
  action: RetryAction;
  status: 'pending' | 'succeeded' | 'failed';
  outcome: string | null;
  requested_by: string;
  started_at: Timestamp;
  finished_at: Timestamp | null;
};

export type AuditTable = {
  id: string;
  tenant_id: string;
  exception_id: string;
  action: string;
  actor: string;
  note: string | null;
  details: Json<Record<string, unknown> | null>;
  at: Timestamp;
};

export type RulesTable = {
  id: string;
  tenant_id: string;
  name: string;
  position: number;
  enabled: boolean;
  match_interface_type: InterfaceType | null;
  match_operation: string | null;
  match_reason: string | null;
  match_customer_id: string | null;
  set_category: Category | null;
  set_severity: Severity | null;
  set_retryable: boolean | null;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type SourcesTable = {
  tenant_id: string;
  interface_type: InterfaceType;
  base_url: string;
  credentials_encrypted: string | null;
  timeout_ms: number;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export const ALERT_KINDS = ['severity', 'retries', 'rate'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export type AlertRulesTable = {
  id: string;
  tenant_id: string;
  name: string;
  enabled: boolean;
  kind: AlertKind;
  min_severity: Severity | null;
  failed_retries: number | null;
  threshold: number | null;
  window_minutes: number | null;
  match_interface_type: InterfaceType | null;
  match_category: Category | null;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type AlertsTable = {
  id: string;
  tenant_id: string;
  rule_id: string;
  group_id: string;
  exception_id: string | null;
  escalation_team: string;
  impact: Json<Record<string, unknown>>;
  suppressed: Generated<number>;
  fired_at: Timestamp;
  acknowledged_by: string | null;
  acknowledged_at: Timestamp | null;
  acknowledge_note: string | null;
};

export type SettingsTable = {
  tenant_id: string;
  archive_after_days: number;
  delete_after_days: number;
  updated_at: Timestamp;
};

export type ArchiveTable = {
  id: string;
  tenant_id: string;
  transaction_id: string;
  record: Json<Record<string, unknown>>;
  archived_at: Timestamp;
};

/**
 * Migration 0032: the summary's rollup, kept by triggers on exceptions.exceptions (never written
 * by the code): per UTC hour (or day) and key, the exceptions last seen in it, and those resolved
 * in it with the sum of their resolved_at - first_seen in ms.
 */
type RollupCounts = { exceptions: Bigint; resolved: Bigint; resolve_ms: Bigint };
type RollupKey = {
  interface_type: InterfaceType;
  severity: Severity;
  category: Category;
  status: ExceptionStatus;
};
/** The same per dimension (interface_type, severity, category, status) and value. */
type RollupDimension = { dimension: 'interface_type' | 'severity' | 'category' | 'status'; value: string };
export type HourlyCountsTable = { tenant_id: string; hour: Timestamp } & RollupKey & RollupCounts;
export type DailyCountsTable = { tenant_id: string; day: Timestamp } & RollupKey & RollupCounts;
export type HourlyTotalsTable = { tenant_id: string; hour: Timestamp } & RollupDimension & RollupCounts;
export type DailyTotalsTable = { tenant_id: string; day: Timestamp } & RollupDimension & RollupCounts;

export type ExceptionsTables = {
  'exceptions.groups': GroupsTable;
  'exceptions.exceptions': ExceptionsTable;
  'exceptions.retry_attempts': RetryAttemptsTable;
  'exceptions.audit': AuditTable;
  'exceptions.rules': RulesTable;
  'exceptions.sources': SourcesTable;
  'exceptions.alert_rules': AlertRulesTable;
  'exceptions.alerts': AlertsTable;
  'exceptions.settings': SettingsTable;
  'exceptions.archive': ArchiveTable;
  'exceptions.hourly_counts': HourlyCountsTable;
  'exceptions.daily_counts': DailyCountsTable;
  'exceptions.hourly_totals': HourlyTotalsTable;
  'exceptions.daily_totals': DailyTotalsTable;
};
export type ExceptionsDb = Kysely<ExceptionsTables>;
export type ExceptionsTrx = Transaction<ExceptionsTables>;
