-- Orders: order records with their lines, the audit trail of every status change, and
-- one counter row per tenant that numbers its orders (#1001, #1002, …). The checkout saga creates
-- and moves orders through src/orders; nothing else writes these tables.
create schema orders;
grant usage on schema orders to mercato_app;

-- The last order number a tenant gave. Incremented by the creating transaction itself
-- (insert … on conflict do update … returning): concurrent creations queue on this row, and a
-- creation that rolls back gives its number back, so numbers are unique and without gaps.
create table orders.counters (
  tenant_id uuid primary key references identity.tenants (id),
  last_number bigint not null check (last_number >= 1001)
);

create table orders.orders (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  number bigint not null check (number >= 1001),
  -- null for a guest; a guest reads the order with the cart token whose SHA-256 is guest_token_hash.
  customer_id uuid references identity.users (id),
  email text check (length(email) between 1 and 320),
  status text not null default 'created'
    check (status in ('created', 'inventory_reserved', 'payment_processing', 'completed', 'failed', 'cancelled')),
  payment_status text not null default 'not_paid'
    check (payment_status in ('not_paid', 'pending', 'authorized', 'captured', 'partially_refunded', 'refunded',
      'voided', 'failed')),
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  shipping_address jsonb check (shipping_address is null or jsonb_typeof(shipping_address) = 'object'),
  billing_address jsonb check (billing_address is null or jsonb_typeof(billing_address) = 'object'),
  -- {id, name, price} as chosen at checkout, or null.
  shipping_option jsonb check (shipping_option is null or jsonb_typeof(shipping_option) = 'object'),
  item_count integer not null check (item_count >= 1),
  subtotal bigint not null check (subtotal >= 0),
  discount bigint not null check (discount >= 0 and discount <= subtotal),
  shipping bigint not null check (shipping >= 0),
  tax bigint not null check (tax >= 0),
  total bigint not null check (total >= 0),
  tax_rate_bps integer not null check (tax_rate_bps between 0 and 10000),
  prices_include_tax boolean not null,
  cart_id uuid,
  -- The request that created the order: one order per (scope, key) in a tenant; request_hash tells
  -- a retry of that request from another request reusing its key.
  idempotency_scope text not null check (length(idempotency_scope) between 1 and 500),
  idempotency_key text not null check (length(idempotency_key) between 1 and 255),
  request_hash text not null check (length(request_hash) between 1 and 200),
  correlation_id text check (length(correlation_id) between 1 and 200),
  failure_reason text
    check (failure_reason in ('out_of_stock', 'payment_declined', 'payment_error', 'timeout', 'validation')),
  failure_message text check (length(failure_message) <= 2000),
  cancel_reason text check (length(cancel_reason) <= 2000),
  guest_token_hash text check (guest_token_hash ~ '^[0-9a-f]{64}$'),
  completed_at timestamptz,
  cancelled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- The totals add up as the cart computes them (src/cart/totals.ts): tax is inside inclusive prices.
  check (total = subtotal - discount + shipping + case when prices_include_tax then 0 else tax end),
  check ((failure_reason is null) = (failure_message is null)),
  check (completed_at is null or status in ('completed', 'cancelled')),
  check ((cancelled_at is not null) = (status = 'cancelled')),
  unique (tenant_id, number),
  unique (tenant_id, idempotency_scope, idempotency_key)
);
-- Lists are newest first (ids are UUIDv7, so by id), whole tenant or one customer's.
create index orders_tenant_newest on orders.orders (tenant_id, id desc);
create index orders_customer_newest on orders.orders (tenant_id, customer_id, id desc) where customer_id is not null;
create index orders_tenant_status on orders.orders (tenant_id, status, id desc);
create index orders_tenant_created on orders.orders (tenant_id, created_at);

-- What was bought, as it was at checkout: lines never change after the order is created.
create table orders.lines (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  order_id uuid not null references orders.orders (id) on delete cascade,
  variant_id uuid not null,
  product_id uuid not null,
  sku text not null check (length(sku) between 1 and 200),
  title text not null check (length(title) <= 500),
  variant_title text not null check (length(variant_title) <= 500),
  quantity integer not null check (quantity between 1 and 1000000),
  unit_price bigint not null check (unit_price >= 0),
  tax bigint not null check (tax >= 0),
  line_total bigint not null check (line_total >= 0)
);
create index lines_order on orders.lines (tenant_id, order_id);

-- The audit trail: every status an order took, who moved it and why (from_status null: created).
-- `at` is the clock when the change was written, not the transaction's start: changes of one order
-- are made under its row lock, one after another, so their `at` follow each other even when they
-- come from different processes (whose UUIDv7 ids need not).
create table orders.history (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  order_id uuid not null references orders.orders (id) on delete cascade,
  from_status text,
  to_status text not null,
  actor text not null check (length(actor) between 1 and 200),
  reason text check (length(reason) <= 2000),
  at timestamptz not null default clock_timestamp()
);
create index history_order on orders.history (tenant_id, order_id, at, id);

alter table orders.counters enable row level security;
alter table orders.orders enable row level security;
alter table orders.lines enable row level security;
alter table orders.history enable row level security;
alter table orders.counters force row level security;
alter table orders.orders force row level security;
alter table orders.lines force row level security;
alter table orders.history force row level security;
create policy tenant_isolation on orders.counters
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on orders.orders
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on orders.lines
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on orders.history
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
-- Orders and their lines are never deleted by the application (the audit trail goes with them);
-- history is append-only.
grant select, insert, update on orders.counters, orders.orders to mercato_app;
grant select, insert on orders.lines, orders.history to mercato_app;
