-- The interface exception collector (issue 13, seed 000): every failed integration captured from
-- the tenant's `interface-exceptions` namespace and from Mercato's own failures (rejected and
-- cancelled orders, WAL dead letters), classified by the tenant's rules, grouped by fingerprint,
-- searchable, retryable, acknowledged and resolved with an audit trail, alerting by rule, and
-- archived then deleted after the tenant's retention.
create schema exceptions;
grant usage on schema exceptions to mercato_app;

-- Exceptions with the same fingerprint (interface type, category, normalized reason), as Sentry
-- groups events into issues.
create table exceptions.groups (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  fingerprint text not null check (length(fingerprint) between 1 and 100),
  interface_type text not null check (interface_type in ('ORDER', 'COLLECTION', 'DISTRIBUTION', 'VALIDATION')),
  category text not null check (category in ('VALIDATION', 'BUSINESS_RULE', 'SYSTEM_ERROR', 'NETWORK_ERROR',
    'TIMEOUT', 'DUPLICATE', 'UNKNOWN')),
  normalized_reason text not null check (length(normalized_reason) <= 1000),
  -- The highest severity seen in the group.
  severity text not null check (severity in ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
  -- Exceptions in the group, and occurrences (a repeated transaction id counts again).
  exceptions integer not null default 0 check (exceptions >= 0),
  occurrences bigint not null default 0 check (occurrences >= 0),
  first_seen timestamptz not null,
  last_seen timestamptz not null,
  unique (tenant_id, fingerprint)
);
create index groups_last_seen on exceptions.groups (tenant_id, last_seen desc, id desc);

-- 000's InterfaceException.
create table exceptions.exceptions (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  transaction_id text not null check (length(transaction_id) between 1 and 200),
  external_id text check (length(external_id) <= 200),
  interface_type text not null check (interface_type in ('ORDER', 'COLLECTION', 'DISTRIBUTION', 'VALIDATION')),
  -- The inbound event type (OrderRejected, ...) or Mercato's (mercato.order.rejected, wal.message.dead-lettered).
  event_type text not null check (length(event_type) between 1 and 200),
  operation text not null check (length(operation) between 1 and 200),
  reason text not null check (length(reason) between 1 and 4000),
  category text not null check (category in ('VALIDATION', 'BUSINESS_RULE', 'SYSTEM_ERROR', 'NETWORK_ERROR',
    'TIMEOUT', 'DUPLICATE', 'UNKNOWN')),
  severity text not null check (severity in ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
  status text not null default 'NEW' check (status in ('NEW', 'ACKNOWLEDGED', 'RETRY_IN_PROGRESS',
    'RETRIED_SUCCESS', 'RETRIED_FAILED', 'RESOLVED', 'CLOSED')),
  customer_id text check (length(customer_id) <= 200),
  location_code text check (length(location_code) <= 200),
  -- The order it concerns and the money at stake (minor units), for the impact of an alert.
  order_id text check (length(order_id) <= 200),
  amount bigint check (amount between 0 and 100000000000000),
  currency char(3) check (currency ~ '^[A-Z]{3}$'),
  retryable boolean not null,
  retry_count integer not null default 0 check (retry_count >= 0),
  retry_limit integer not null default 5 check (retry_limit between 0 and 100),
  correlation_id text check (length(correlation_id) <= 200),
  causation_id text check (length(causation_id) <= 200),
  -- Where the payload lives and how a retry re-submits: {kind: 'wal-dead-letter', namespace,
  -- messageId} | {kind: 'order', orderId} | {kind: 'source', interfaceType, externalId}.
  source_ref jsonb not null check (jsonb_typeof(source_ref) = 'object'),
  -- The event's own data as it arrived (bounded by the namespace's payload limit).
  payload jsonb,
  group_id uuid not null references exceptions.groups (id),
  occurrences integer not null default 1 check (occurrences >= 1),
  first_seen timestamptz not null default now(),
  last_seen timestamptz not null default now(),
  acknowledged_by text,
  acknowledged_at timestamptz,
  acknowledge_note text check (length(acknowledge_note) <= 4000),
  resolved_by text,
  resolved_at timestamptz,
  resolution text check (length(resolution) <= 200),
  resolve_note text check (length(resolve_note) <= 4000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Full-text search over the reason, the ids, the customer and the payload's text.
  search tsvector generated always as (
    setweight(to_tsvector('simple'::regconfig, coalesce(transaction_id, '') || ' ' || coalesce(external_id, '')
      || ' ' || coalesce(customer_id, '') || ' ' || coalesce(order_id, '') || ' ' || coalesce(location_code, '')), 'A')
    || setweight(to_tsvector('english'::regconfig, reason), 'B')
    || setweight(jsonb_to_tsvector('simple'::regconfig, coalesce(payload, 'null'::jsonb), '["string", "numeric"]'), 'C')
  ) stored,
  unique (tenant_id, transaction_id)
);
-- Includes what the summary counts, so its scan of a range reads this index only (summary.ts).
create index exceptions_newest on exceptions.exceptions (tenant_id, last_seen desc, id desc)
  include (interface_type, severity, status, category, first_seen);
create index exceptions_status on exceptions.exceptions (tenant_id, status, last_seen desc);
create index exceptions_severity on exceptions.exceptions (tenant_id, severity, last_seen desc);
create index exceptions_group on exceptions.exceptions (group_id);
create index exceptions_search on exceptions.exceptions using gin (search);
-- Retention's scan, across tenants.
create index exceptions_closed on exceptions.exceptions (tenant_id, updated_at) where status in ('RESOLVED', 'CLOSED');
-- The list's other sorts (keyset on the key, last seen and id), its selective filters, and the
-- summary's mean time to resolve (index-only, as the summary's counts are on exceptions_newest),
-- each one index scan at 1,000,000 rows per tenant. The severity expression is
-- exception-queries.ts's SEVERITY_RANK, character for character.
create index exceptions_first_seen on exceptions.exceptions (tenant_id, first_seen desc, id desc);
create index exceptions_by_severity on exceptions.exceptions (tenant_id,
  (case severity when 'CRITICAL' then 3 when 'HIGH' then 2 when 'MEDIUM' then 1 else 0 end) desc,
  last_seen desc, id desc);
create index exceptions_by_occurrences on exceptions.exceptions (tenant_id, occurrences desc, last_seen desc, id desc);
create index exceptions_category on exceptions.exceptions (tenant_id, category, last_seen desc);
create index exceptions_interface on exceptions.exceptions (tenant_id, interface_type, last_seen desc);
create index exceptions_customer on exceptions.exceptions (tenant_id, customer_id, last_seen desc)
  where customer_id is not null;
create index exceptions_location on exceptions.exceptions (tenant_id, location_code, last_seen desc)
  where location_code is not null;
create index exceptions_resolved on exceptions.exceptions (tenant_id, resolved_at)
  include (interface_type, severity, status, category, first_seen) where resolved_at is not null;

-- 000's RetryAttempt: one per retry, with its outcome.
create table exceptions.retry_attempts (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  exception_id uuid not null references exceptions.exceptions (id) on delete cascade,
  attempt integer not null check (attempt >= 1),
  -- requeue (a WAL dead letter), source (the external interface's retry endpoint), checkout (a new saga).
  action text not null check (action in ('requeue', 'source', 'checkout')),
  status text not null check (status in ('pending', 'succeeded', 'failed')),
  outcome text check (length(outcome) <= 4000),
  requested_by text not null,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  unique (exception_id, attempt)
);

-- Every change to an exception: captured, repeated, acknowledged, resolved, retried, closed.
create table exceptions.audit (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  exception_id uuid not null references exceptions.exceptions (id) on delete cascade,
  action text not null check (length(action) between 1 and 100),
  actor text not null,
  note text check (length(note) <= 4000),
  details jsonb,
  at timestamptz not null default now()
);
create index audit_exception on exceptions.audit (exception_id, at);

-- Classification rules a tenant admin edits: the first enabled rule (by position) that matches
-- sets category, severity and retryable; without one the documented defaults apply.
create table exceptions.rules (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  name text not null check (length(name) between 1 and 200),
  position integer not null check (position between 0 and 10000),
  enabled boolean not null default true,
  match_interface_type text check (match_interface_type in ('ORDER', 'COLLECTION', 'DISTRIBUTION', 'VALIDATION')),
  match_operation text check (length(match_operation) between 1 and 200),
  -- A case-insensitive substring of the reason (no patterns: nothing a tenant writes runs as a regex).
  match_reason text check (length(match_reason) between 1 and 200),
  match_customer_id text check (length(match_customer_id) between 1 and 200),
  set_category text check (set_category in ('VALIDATION', 'BUSINESS_RULE', 'SYSTEM_ERROR', 'NETWORK_ERROR',
    'TIMEOUT', 'DUPLICATE', 'UNKNOWN')),
  set_severity text check (set_severity in ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
  set_retryable boolean,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (set_category is not null or set_severity is not null or set_retryable is not null)
);
create index rules_tenant on exceptions.rules (tenant_id, position, id);

-- Where a tenant's external interfaces serve payloads and take retries, per interface type.
create table exceptions.sources (
  tenant_id uuid not null references identity.tenants (id),
  interface_type text not null check (interface_type in ('ORDER', 'COLLECTION', 'DISTRIBUTION', 'VALIDATION')),
  base_url text not null check (length(base_url) between 1 and 2000),
  -- AES-256-GCM under the operator's key; never returned.
  credentials_encrypted text,
  timeout_ms integer not null default 5000 check (timeout_ms between 100 and 30000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, interface_type)
);

create table exceptions.alert_rules (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  name text not null check (length(name) between 1 and 200),
  enabled boolean not null default true,
  -- severity: an exception at or above min_severity; retries: an exception with failed_retries
  -- failed retries; rate: more than threshold exceptions (of the filters) within window_minutes.
  kind text not null check (kind in ('severity', 'retries', 'rate')),
  min_severity text check (min_severity in ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
  failed_retries integer check (failed_retries between 1 and 100),
  threshold integer check (threshold between 1 and 1000000),
  window_minutes integer check (window_minutes between 1 and 10080),
  match_interface_type text check (match_interface_type in ('ORDER', 'COLLECTION', 'DISTRIBUTION', 'VALIDATION')),
  match_category text check (match_category in ('VALIDATION', 'BUSINESS_RULE', 'SYSTEM_ERROR', 'NETWORK_ERROR',
    'TIMEOUT', 'DUPLICATE', 'UNKNOWN')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (kind <> 'severity' or min_severity is not null),
  check (kind <> 'retries' or failed_retries is not null),
  check (kind <> 'rate' or (threshold is not null and window_minutes is not null))
);
create index alert_rules_tenant on exceptions.alert_rules (tenant_id, id);

-- Alerts fired: one open alert per rule and group until it is acknowledged.
create table exceptions.alerts (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  rule_id uuid not null references exceptions.alert_rules (id) on delete cascade,
  group_id uuid not null references exceptions.groups (id) on delete cascade,
  exception_id uuid references exceptions.exceptions (id) on delete set null,
  escalation_team text not null,
  impact jsonb not null,
  -- Exceptions that matched while the alert was open (not alerted again).
  suppressed integer not null default 0,
  fired_at timestamptz not null default now(),
  acknowledged_by text,
  acknowledged_at timestamptz,
  acknowledge_note text check (length(acknowledge_note) <= 4000)
);
create unique index alerts_open on exceptions.alerts (rule_id, group_id) where acknowledged_at is null;
create index alerts_tenant on exceptions.alerts (tenant_id, fired_at desc, id desc);

-- Per-tenant retention: resolved and closed exceptions are archived after archive_after_days and
-- the archive deleted after delete_after_days.
create table exceptions.settings (
  tenant_id uuid primary key references identity.tenants (id),
  archive_after_days integer not null default 30 check (archive_after_days between 1 and 3650),
  delete_after_days integer not null default 365 check (delete_after_days between 1 and 36500),
  updated_at timestamptz not null default now()
);

create table exceptions.archive (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  transaction_id text not null,
  -- The exception with its retry attempts and audit, as JSON.
  record jsonb not null,
  archived_at timestamptz not null default now()
);
create index archive_tenant on exceptions.archive (tenant_id, archived_at);

do $$
declare t text;
begin
  foreach t in array array['groups', 'exceptions', 'retry_attempts', 'audit', 'rules', 'sources',
    'alert_rules', 'alerts', 'settings', 'archive'] loop
    execute format('alter table exceptions.%I enable row level security', t);
    execute format('alter table exceptions.%I force row level security', t);
    execute format($p$create policy tenant_isolation on exceptions.%I
      using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
      with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)$p$, t);
    execute format('grant select, insert, update, delete on exceptions.%I to mercato_app', t);
  end loop;
end $$;

-- Search reads exceptions through this view, never the table (as catalog search does, 0017).
-- PostgreSQL uses an operator as an index condition under row-level security only if it is
-- leakproof, and full text's @@ is not: through the table every search was a sequential scan of
-- the tenant's rows. The view reads the table with its owner's rights and carries the tenant
-- condition itself, which the planner combines with the GIN index; so the owner (who migrates and
-- runs cross-tenant sweeps) is not forced under the table's policy. The request role can only
-- select from the view; everything else it does goes through the table's policy.
alter table exceptions.exceptions no force row level security;
create view exceptions.tenant_exceptions as
  select * from exceptions.exceptions
  where tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid;
grant select on exceptions.tenant_exceptions to mercato_app;
