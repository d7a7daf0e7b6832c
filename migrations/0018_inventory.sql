-- Inventory: stock per variant per location, TTL reservations and the ledger of every movement.
create schema inventory;
grant usage on schema inventory to mercato_app;

create table inventory.locations (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  name text not null check (length(name) between 1 and 200),
  code text check (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  is_default boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
-- One default location per tenant (created lazily and idempotently with on conflict do nothing).
create unique index locations_one_default on inventory.locations (tenant_id) where is_default;
create unique index locations_code on inventory.locations (tenant_id, code) where code is not null;
create index locations_tenant on inventory.locations (tenant_id, id);

-- Stock of one variant at one location. available = on_hand - reserved; 001's invariant
-- "Reserved cannot exceed Quantity" is a constraint, not a convention: it holds for any SQL.
-- An item that allows backorders may promise more than it holds: reserved above on_hand, and
-- on_hand below zero once such a reservation is committed (Shopify's "continue selling").
create table inventory.items (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  location_id uuid not null references inventory.locations (id),
  variant_id uuid not null,
  product_id uuid,
  sku text check (length(sku) between 1 and 100),
  on_hand integer not null default 0,
  reserved integer not null default 0,
  available integer generated always as (on_hand - reserved) stored,
  low_stock_threshold integer not null default 0 check (low_stock_threshold between 0 and 1000000000),
  allow_backorder boolean not null default false,
  -- set when mercato.inventory.low-stock was published for the current crossing; cleared
  -- (re-armed) when available rises above the threshold again
  low_stock_alerted boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint items_variant_location unique (tenant_id, variant_id, location_id),
  constraint items_reserved_not_negative check (reserved >= 0),
  constraint items_on_hand_not_negative check (on_hand >= 0 or allow_backorder),
  constraint items_reserved_within_on_hand check (reserved <= on_hand or allow_backorder)
);
create index items_tenant on inventory.items (tenant_id, id);
create index items_variant on inventory.items (tenant_id, variant_id);
create index items_product on inventory.items (tenant_id, product_id, variant_id);
create index items_sku on inventory.items (tenant_id, sku);
create index items_low_stock on inventory.items (tenant_id, id) where available <= low_stock_threshold;

-- Reservations: stock held for a key (a cart, a checkout) until committed, released or expired.
create table inventory.reservations (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  key text not null check (length(key) between 1 and 200),
  status text not null check (status in ('active', 'committed', 'released', 'expired')),
  -- hash of the requested lines: the same key with other lines is 409 IDEMPOTENCY_KEY_REUSED
  request_hash text not null,
  reference text check (length(reference) <= 200),
  actor text not null,
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint reservations_key unique (tenant_id, key)
);
-- The sweeper's scan: active reservations by expiry, across tenants.
create index reservations_expiry on inventory.reservations (expires_at) where status = 'active';

create table inventory.reservation_lines (
  reservation_id uuid not null references inventory.reservations (id) on delete cascade,
  tenant_id uuid not null references identity.tenants (id),
  item_id uuid not null,
  variant_id uuid not null,
  location_id uuid not null,
  quantity integer not null check (quantity > 0),
  primary key (reservation_id, item_id)
);
create index reservation_lines_item on inventory.reservation_lines (tenant_id, item_id);

-- Every movement of stock, from which on_hand and reserved are rebuilt (mercato inventory verify).
create table inventory.ledger (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  item_id uuid not null references inventory.items (id) on delete cascade,
  kind text not null check (kind in ('receive', 'adjust', 'reserve', 'release', 'commit', 'expire', 'return')),
  quantity integer not null,
  on_hand_delta integer not null,
  reserved_delta integer not null,
  on_hand_after integer not null,
  reserved_after integer not null,
  reason text check (length(reason) <= 500),
  actor text not null,
  reference text check (length(reference) <= 200),
  reservation_key text,
  created_at timestamptz not null default now()
);
create index ledger_item on inventory.ledger (tenant_id, item_id, id);

alter table inventory.locations enable row level security;
alter table inventory.locations force row level security;
create policy tenant_isolation on inventory.locations
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table inventory.items enable row level security;
alter table inventory.items force row level security;
create policy tenant_isolation on inventory.items
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

-- Not forced: the expiry sweeper finds due reservations of every tenant as the owner
-- (withSystem), then expires each tenant's under its own withTenant transaction.
alter table inventory.reservations enable row level security;
create policy tenant_isolation on inventory.reservations
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table inventory.reservation_lines enable row level security;
alter table inventory.reservation_lines force row level security;
create policy tenant_isolation on inventory.reservation_lines
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table inventory.ledger enable row level security;
alter table inventory.ledger force row level security;
create policy tenant_isolation on inventory.ledger
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

grant select, insert, update, delete on inventory.locations, inventory.items, inventory.reservations,
  inventory.reservation_lines to mercato_app;
-- The ledger is append-only for requests (deleted only with an emptied location's items).
grant select, insert, delete on inventory.ledger to mercato_app;
