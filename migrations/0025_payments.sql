-- Payments (src/payments): a payment per order and idempotency key, the history of every call
-- made to its provider, refunds, and the webhook deliveries already applied. Plus the ledger of
-- the `test` payment provider (schema test_psp): a stand-in PSP that keeps its own books, as
-- Stripe would on its side, so tests can prove what was charged.
create schema payments;
grant usage on schema payments to mercato_app;

-- status follows src/payments/payment-machine.ts; failure_code says why a failed one failed.
-- refunded_amount never passes amount; key is the caller's idempotency key (the checkout saga's).
create table payments.payments (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  order_id uuid not null,
  key text not null check (length(key) between 1 and 200),
  amount bigint not null check (amount > 0),
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  status text not null check (status in ('pending', 'processing', 'authorized', 'completed', 'failed',
    'voided', 'refunded', 'partially_refunded')),
  provider text not null check (provider in ('test')),
  -- The provider's token of the card (never a card number); used when staff process the payment.
  token text not null check (length(token) between 1 and 200),
  provider_transaction_id text check (length(provider_transaction_id) between 1 and 200),
  refunded_amount bigint not null default 0 check (refunded_amount >= 0 and refunded_amount <= amount),
  failure_code text check (failure_code in ('card_declined', 'insufficient_funds', 'processing_error',
    'timeout', 'voided', 'manual')),
  failure_message text check (length(failure_message) <= 1000),
  processed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint payments_key unique (tenant_id, key),
  check ((failure_code is null) = (status <> 'failed' and status <> 'voided'))
);
create index payments_order on payments.payments (tenant_id, order_id, id);
-- Webhooks find the payment of a transaction within the tenant the delivery names.
create index payments_transaction on payments.payments (tenant_id, provider_transaction_id)
  where provider_transaction_id is not null;

-- One row per call to the provider (or webhook received), so staff can see what happened:
-- outcome 'started' until the answer came; 'aborted' when the caller gave up waiting.
create table payments.operations (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  payment_id uuid not null references payments.payments (id),
  kind text not null check (kind in ('authorize', 'capture', 'void', 'refund')),
  source text not null default 'call' check (source in ('call', 'webhook')),
  idempotency_key text not null check (length(idempotency_key) between 1 and 300),
  amount bigint check (amount >= 0),
  outcome text not null check (outcome in ('started', 'authorized', 'pending', 'declined', 'error',
    'aborted', 'captured', 'voided', 'refunded', 'failed')),
  detail text check (length(detail) <= 1000),
  created_at timestamptz not null default now(),
  finished_at timestamptz
);
create index operations_payment on payments.operations (tenant_id, payment_id, id);

-- A refund of a completed payment, idempotent by (payment, refund_key): 'pending' while the
-- provider is asked (its amount counts as taken, so two concurrent refunds cannot pass the total).
create table payments.refunds (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  payment_id uuid not null references payments.payments (id),
  refund_key text not null check (length(refund_key) between 1 and 200),
  amount bigint not null check (amount > 0),
  reason text not null check (length(reason) between 1 and 500),
  status text not null check (status in ('pending', 'succeeded', 'failed')),
  provider_refund_id text check (length(provider_refund_id) between 1 and 200),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint refunds_key unique (tenant_id, payment_id, refund_key)
);

-- Webhook deliveries applied (Standard Webhooks `webhook-id`): a replay has no second effect.
create table payments.webhook_deliveries (
  tenant_id uuid not null references identity.tenants (id),
  id text not null check (length(id) between 1 and 200),
  payment_id uuid not null references payments.payments (id),
  received_at timestamptz not null default now(),
  primary key (tenant_id, id)
);

alter table payments.payments enable row level security;
alter table payments.operations enable row level security;
alter table payments.refunds enable row level security;
alter table payments.webhook_deliveries enable row level security;
alter table payments.payments force row level security;
alter table payments.operations force row level security;
alter table payments.refunds force row level security;
alter table payments.webhook_deliveries force row level security;
create policy tenant_isolation on payments.payments
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on payments.operations
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on payments.refunds
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on payments.webhook_deliveries
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, insert, update on payments.payments, payments.operations, payments.refunds,
  payments.webhook_deliveries to mercato_app;

-- The `test` PSP: a separate system in its own schema, reached only through the owner role
-- (withSystem) and written in its own transactions, never in Mercato's. Its merchant is a
-- Mercato tenant, but nothing here references Mercato's tables: a real PSP knows none of them.
-- mercato_app gets no grant.
create schema test_psp;

-- One row: the secret the PSP signs its webhooks with (Standard Webhooks `whsec_` + base64 of
-- 32 random bytes), made once here; Mercato's webhook route reads the same row to verify.
create table test_psp.settings (
  id boolean primary key default true check (id),
  webhook_secret text not null check (webhook_secret ~ '^whsec_[A-Za-z0-9+/=]{40,}$')
);
insert into test_psp.settings (webhook_secret)
values ('whsec_' || encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'base64'));

-- A charge: made by an authorization, keyed by the merchant's idempotency key of it. A void that
-- finds no charge for its authorization key leaves a 'voided' one with no amount, so an
-- authorization still in flight cannot land after it.
create table test_psp.charges (
  id text primary key check (id ~ '^ch_[0-9a-f]{32}$'),
  merchant_id uuid not null,
  idempotency_key text not null check (length(idempotency_key) between 1 and 300),
  amount bigint not null check (amount >= 0),
  currency char(3) check (currency ~ '^[A-Z]{3}$'),
  token text,
  status text not null check (status in ('pending', 'authorized', 'captured', 'voided', 'declined',
    'failed')),
  decline_code text check (decline_code in ('card_declined', 'insufficient_funds')),
  captured_amount bigint not null default 0 check (captured_amount >= 0 and captured_amount <= amount),
  refunded_amount bigint not null default 0 check (refunded_amount >= 0
    and refunded_amount <= captured_amount),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint charges_key unique (merchant_id, idempotency_key)
);

-- Every request the PSP took, once per (merchant, idempotency key): the same key again answers
-- the stored result, so a retry never charges twice (also across processes and after a crash).
create table test_psp.operations (
  id uuid primary key,
  merchant_id uuid not null,
  idempotency_key text not null check (length(idempotency_key) between 1 and 300),
  kind text not null check (kind in ('authorize', 'capture', 'void', 'refund')),
  charge_id text references test_psp.charges (id),
  amount bigint check (amount >= 0),
  result jsonb not null,
  created_at timestamptz not null default now(),
  constraint operations_key unique (merchant_id, idempotency_key)
);
create index operations_charge on test_psp.operations (charge_id);
create index charges_merchant on test_psp.charges (merchant_id, created_at);
