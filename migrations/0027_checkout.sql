-- The checkout saga (issue 11): one saga per order and its transaction log. Each step's start,
-- outcome and compensation is a saga_steps row written in the transaction of the step's own
-- database effect (the order's status), so after a crash the saga knows exactly where it stood.
create schema checkout;
grant usage on schema checkout to mercato_app;

create table checkout.sagas (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  order_id uuid not null unique,
  cart_id uuid,
  -- running: steps go forward; compensating: undoing from `step` back; then one of the last three.
  status text not null check (status in ('running', 'compensating', 'completed', 'failed', 'cancelled')),
  -- The step running or next to run (forward), or next to undo (compensating).
  step text not null check (step in ('validate', 'reserve', 'authorize', 'confirm')),
  -- {provider, token}: kept only until the authorization is settled.
  payment jsonb,
  -- {reason, code, message} of the failure (or the cancel) that made it compensate.
  failure jsonb,
  -- {actor, reason}: a cancel waiting for the runner that holds the saga.
  cancel_requested jsonb,
  -- When the step in flight times out.
  deadline_at timestamptz,
  -- A runner holds the saga until lease_until; an expired lease is taken over (crash).
  lease_owner text,
  lease_until timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);
-- One checkout at a time per cart.
create unique index sagas_one_open_per_cart on checkout.sagas (tenant_id, cart_id)
  where cart_id is not null and status in ('running', 'compensating');

create table checkout.saga_steps (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  saga_id uuid not null references checkout.sagas (id) on delete cascade,
  step text not null check (step in ('validate', 'reserve', 'authorize', 'confirm')),
  action text not null check (action in ('invoke', 'compensate')),
  attempt integer not null check (attempt >= 1),
  status text not null check (status in ('started', 'succeeded', 'failed')),
  output jsonb,
  error jsonb,
  started_at timestamptz not null default now(),
  finished_at timestamptz
);
create index saga_steps_of_saga on checkout.saga_steps (tenant_id, saga_id, started_at);

alter table checkout.sagas enable row level security;
alter table checkout.saga_steps enable row level security;
alter table checkout.sagas force row level security;
alter table checkout.saga_steps force row level security;
create policy tenant_isolation on checkout.sagas
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on checkout.saga_steps
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, insert, update, delete on checkout.sagas, checkout.saga_steps to mercato_app;
