-- The WAL service: namespaces, messages (the PostgreSQL backend's log and, for every backend,
-- the transactional outbox and the record of state and attempts), attempts, the inbox of
-- internal handlers, and the audit log of namespace and dead-letter changes.
create schema wal;
grant usage on schema wal to mercato_app;

create table wal.namespaces (
  tenant_id uuid not null references identity.tenants (id),
  name text not null check (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  backend text not null default 'postgres' check (backend in ('postgres', 'redis-streams', 'nats-jetstream')),
  fallback_backend text check (fallback_backend in ('postgres', 'redis-streams', 'nats-jetstream')),
  payload_schema jsonb,
  retry_strategy text not null default 'exponential' check (retry_strategy in ('exponential', 'linear', 'fixed')),
  retry_base_delay_ms integer not null default 1000 check (retry_base_delay_ms between 1 and 86400000),
  retry_max_delay_ms integer not null default 300000 check (retry_max_delay_ms between 1 and 86400000),
  max_attempts integer not null default 10 check (max_attempts between 1 and 1000),
  retry_jitter double precision not null default 0.2 check (retry_jitter between 0 and 1),
  targets jsonb not null default '[]' check (jsonb_typeof(targets) = 'array'),
  rate_limit_per_second integer check (rate_limit_per_second > 0),
  max_delay_ms bigint not null default 604800000 check (max_delay_ms >= 0),
  max_payload_bytes integer not null default 262144 check (max_payload_bytes between 1 and 16777216),
  delivered_retention_seconds integer not null default 604800 check (delivered_retention_seconds >= 0),
  dead_retention_seconds integer not null default 2592000 check (dead_retention_seconds >= 0),
  allowed_hosts text[] not null default '{}',
  consumer_concurrency integer not null default 8 check (consumer_concurrency between 1 and 256),
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, name),
  check (fallback_backend is distinct from backend),
  check (retry_max_delay_ms >= retry_base_delay_ms)
);

-- One row per message. `id` (UUIDv7) orders delivery; `message_id` is the caller's id (given,
-- or the id itself), unique per namespace, which makes writes idempotent.
create table wal.messages (
  id uuid primary key,
  tenant_id uuid not null,
  namespace text not null,
  message_id text not null check (length(message_id) between 1 and 200),
  ordering_key text check (length(ordering_key) <= 200),
  payload jsonb not null,
  headers jsonb not null default '{}',
  request_hash text not null,
  backend text not null,
  state text not null check (state in ('scheduled', 'pending', 'delivering', 'delivered', 'retrying', 'dead')),
  due_at timestamptz not null,
  attempts integer not null default 0,
  max_attempts integer not null,
  -- targets (by name) this message was already delivered to; a retry skips them
  targets_done text[] not null default '{}',
  lease_token uuid,
  lease_expires_at timestamptz,
  last_error text,
  created_at timestamptz not null default now(),
  delivered_at timestamptz,
  dead_at timestamptz,
  unique (tenant_id, namespace, message_id),
  foreign key (tenant_id, namespace) references wal.namespaces (tenant_id, name) on delete cascade
);
-- The delivery queue: what is due, in order.
create index messages_due on wal.messages (due_at, id) where state in ('scheduled', 'pending', 'retrying');
create index messages_leased on wal.messages (lease_expires_at) where state = 'delivering';
create index messages_key on wal.messages (tenant_id, namespace, ordering_key, id)
  where ordering_key is not null and state not in ('delivered', 'dead');
create index messages_dead on wal.messages (tenant_id, namespace, dead_at desc, id) where state = 'dead';
create index messages_retention on wal.messages (state, coalesce(delivered_at, dead_at))
  where state in ('delivered', 'dead');

create table wal.attempts (
  message_pk uuid not null references wal.messages (id) on delete cascade,
  tenant_id uuid not null,
  attempt integer not null,
  target text not null,
  started_at timestamptz not null,
  finished_at timestamptz not null,
  outcome text not null check (outcome in ('delivered', 'failed', 'dead', 'skipped')),
  status_code integer,
  error text,
  primary key (message_pk, attempt, target)
);

-- Internal handlers record each message they handled in the same transaction as its effect,
-- so a redelivery has no second effect.
create table wal.inbox (
  consumer text not null,
  message_pk uuid not null,
  tenant_id uuid not null,
  handled_at timestamptz not null default now(),
  primary key (consumer, message_pk)
);

create table wal.audit_log (
  id uuid primary key,
  tenant_id uuid not null,
  actor text not null,
  action text not null,
  subject text not null,
  details jsonb not null default '{}',
  at timestamptz not null default now()
);
create index audit_log_tenant on wal.audit_log (tenant_id, at desc);

alter table wal.namespaces enable row level security;
alter table wal.messages enable row level security;
alter table wal.attempts enable row level security;
alter table wal.inbox enable row level security;
alter table wal.audit_log enable row level security;
create policy tenant_isolation on wal.namespaces
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on wal.messages
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on wal.attempts
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on wal.inbox
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on wal.audit_log
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, insert, update, delete on wal.namespaces, wal.messages, wal.attempts, wal.inbox to mercato_app;
grant select, insert on wal.audit_log to mercato_app;

-- New messages are announced on commit (one notification per transaction), so consumers LISTEN
-- instead of polling; a timer covers messages that become due later.
create function wal.notify_messages_ready() returns trigger language plpgsql as $$
begin
  perform pg_notify('mercato_wal_ready', '');
  return null;
end
$$;
create trigger messages_ready after insert on wal.messages
  for each statement execute function wal.notify_messages_ready();

-- Namespace changes are announced so every process drops its cached copy at once.
create function wal.notify_namespace_changed() returns trigger language plpgsql as $$
begin
  perform pg_notify('mercato_wal_namespaces', coalesce(new.tenant_id, old.tenant_id)::text || '/' || coalesce(new.name, old.name));
  return null;
end
$$;
create trigger namespaces_changed after insert or update or delete on wal.namespaces
  for each row execute function wal.notify_namespace_changed();
