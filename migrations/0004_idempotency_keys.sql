-- Answers to POST requests sent with an Idempotency-Key, replayed when the same caller sends the
-- same key again. `scope` names the caller (user, API key, or IP for anonymous calls), so one
-- caller's key never replays another's answer. Rows expire after a day.
create table platform.idempotency_keys (
  scope text not null,
  key text not null,
  request_hash text not null,
  status_code integer,
  content_type text,
  response text,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  primary key (scope, key)
);
create index idempotency_keys_expiry on platform.idempotency_keys (expires_at);
