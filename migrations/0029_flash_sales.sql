-- Flash sales (issue 12): campaigns that hold allotted units of one variant as an inventory
-- reservation (`flash-sale:<id>`), and the admissions the gate let through, each with its order.
-- Redis (or the in-process gate) admits; these rows are the record. The campaign row's `admitted`
-- is the final arbiter: the admission batch raises it under the row's lock and the check below
-- refuses more than the allotment, whatever a gate said.
create schema flash_sales;
grant usage on schema flash_sales to mercato_app;

create table flash_sales.campaigns (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  name text not null check (length(name) between 1 and 200),
  variant_id uuid not null,
  product_id uuid not null,
  sku text not null check (length(sku) between 1 and 200),
  title text not null check (length(title) <= 500),
  variant_title text not null check (length(variant_title) <= 500),
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  sale_price bigint not null check (sale_price between 0 and 100000000000),
  units integer not null check (units between 1 and 1000000),
  per_customer_limit integer not null check (per_customer_limit between 1 and 1000),
  payment_window_minutes integer not null check (payment_window_minutes between 1 and 1440),
  priority text not null check (priority in ('low', 'normal', 'high', 'urgent')),
  starts_at timestamptz not null,
  ends_at timestamptz not null,
  -- Units held by admissions not released (admitted, paying or paid).
  admitted integer not null default 0,
  -- Units of paid admissions.
  sold integer not null default 0,
  -- Units given back by failed or late payments (they became admittable again).
  released integer not null default 0,
  cancelled_at timestamptz,
  cancel_reason text check (length(cancel_reason) <= 2000),
  -- When the unsold pool went back to inventory (after the end or the cancel).
  settled_at timestamptz,
  -- Events announced: started, sold-out (the last crossing), ended.
  announced jsonb not null default '{}',
  created_by text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (ends_at > starts_at),
  check (admitted between 0 and units),
  check (sold between 0 and admitted)
);
create index campaigns_tenant_newest on flash_sales.campaigns (tenant_id, id desc);
-- The lifecycle's scan (starts, ends, settlement), across tenants.
create index campaigns_unsettled on flash_sales.campaigns (ends_at) where settled_at is null;

create table flash_sales.admissions (
  order_id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  campaign_id uuid not null references flash_sales.campaigns (id),
  customer_id uuid not null,
  idempotency_key text not null check (length(idempotency_key) between 1 and 255),
  request_hash text not null,
  quantity integer not null check (quantity between 1 and 1000),
  -- admitted: waiting for payment (or for the payment queue); paying: its checkout saga runs;
  -- paid: the saga completed; released: its units went back (declined, late, failed).
  status text not null check (status in ('admitted', 'paying', 'paid', 'released')),
  -- {provider, token} until the payment queue hands it to the saga.
  payment jsonb check (payment is null or jsonb_typeof(payment) = 'object'),
  pay_by timestamptz not null,
  release_reason text check (release_reason in ('payment_declined', 'payment_error', 'timeout',
    'validation', 'out_of_stock', 'cancelled', 'reconciled')),
  admitted_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, campaign_id, customer_id, idempotency_key)
);
create index admissions_campaign on flash_sales.admissions (campaign_id, status);
create index admissions_customer on flash_sales.admissions (campaign_id, customer_id);
-- The payment queue's and the window's scans, across tenants.
create index admissions_waiting on flash_sales.admissions (pay_by) where status = 'admitted';
create index admissions_queued on flash_sales.admissions (admitted_at) where status = 'admitted' and payment is not null;

alter table flash_sales.campaigns enable row level security;
alter table flash_sales.admissions enable row level security;
alter table flash_sales.campaigns force row level security;
alter table flash_sales.admissions force row level security;
create policy tenant_isolation on flash_sales.campaigns
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on flash_sales.admissions
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, insert, update on flash_sales.campaigns, flash_sales.admissions to mercato_app;
