import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type Json<T> = ColumnType<T, string, string>;

export type MessageState = 'scheduled' | 'pending' | 'delivering' | 'delivered' | 'retrying' | 'dead';
export type BackendName = 'postgres' | 'redis-streams' | 'nats-jetstream';

export type NamespacesTable = {
  tenant_id: string;
  name: string;
  backend: Generated<BackendName>;
  fallback_backend: BackendName | null;
  /** Migration 0056: kept by a trigger, never written by the application. */
  draining_backends: ColumnType<BackendName[], never, never>;
  payload_schema: Json<Record<string, unknown> | null> | null;
  retry_strategy: Generated<'exponential' | 'linear' | 'fixed'>;
  retry_base_delay_ms: Generated<number>;
  retry_max_delay_ms: Generated<number>;
  max_attempts: Generated<number>;
  retry_jitter: Generated<number>;
  targets: Json<unknown[]>;
  rate_limit_per_second: number | null;
  max_delay_ms: Generated<number>;
  max_payload_bytes: Generated<number>;
  delivered_retention_seconds: Generated<number>;
  dead_retention_seconds: Generated<number>;
  allowed_hosts: Generated<string[]>;
  consumer_concurrency: Generated<number>;
  enabled: Generated<boolean>;
  /** Migration 0015: a system namespace (domain events). */
  system: Generated<boolean>;
  created_at: Timestamp;
  updated_at: Timestamp;
};

export type MessagesTable = {
  id: string;
  tenant_id: string;
  namespace: string;
  message_id: string;
  ordering_key: string | null;
  payload: Json<unknown>;
  headers: Json<Record<string, string>>;
  request_hash: string;
  backend: BackendName;
  state: MessageState;
  due_at: Timestamp;
  /** Set while the message is parked behind an earlier message of its key: when it fell due (migration 0051). */
  parked_due_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  attempts: Generated<number>;
  max_attempts: number;
  targets_done: Generated<string[]>;
  lease_token: string | null;
  lease_expires_at: Timestamp | null;
  last_error: string | null;
  created_at: Timestamp;
  delivered_at: Timestamp | null;
  dead_at: Timestamp | null;
  /**
   * An outbox row the relay sent (or was about to send) to this stream backend without its answer:
   * written to no other backend until that one confirms or refuses it (migration 0063, relay-marks.ts).
   */
  sent_to: ColumnType<
    Exclude<BackendName, 'postgres'> | null,
    Exclude<BackendName, 'postgres'> | null | undefined,
    Exclude<BackendName, 'postgres'> | null
  >;
};

export type AttemptsTable = {
  message_pk: string;
  tenant_id: string;
  attempt: number;
  target: string;
  started_at: Timestamp;
  finished_at: Timestamp;
  outcome: 'delivered' | 'failed' | 'dead' | 'skipped';
  status_code: number | null;
  error: string | null;
};

export type InboxTable = { consumer: string; message_pk: string; tenant_id: string; handled_at: Timestamp };

export type AuditLogTable = {
  id: string;
  tenant_id: string;
  actor: string;
  action: string;
  subject: string;
  details: Json<Record<string, unknown>>;
  at: Timestamp;
};

/** The tables the WAL module owns (schema `wal`, migration 0007). */
export type WalTables = {
  'wal.namespaces': NamespacesTable;
  'wal.messages': MessagesTable;
  'wal.attempts': AttemptsTable;
  'wal.inbox': InboxTable;
  'wal.audit_log': AuditLogTable;
};
