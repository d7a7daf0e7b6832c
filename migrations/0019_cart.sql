-- Carts (issue 10): carts of customers and guests, their lines, flat-rate shipping options, tax
-- rates and each tenant's cart settings. Totals are not stored: they are computed from these rows
-- on every answer (src/cart/totals.ts), so they cannot drift.
create schema cart;
grant usage on schema cart to mercato_app;

-- One row per tenant that changed a setting; a tenant without one uses the defaults.
create table cart.settings (
  tenant_id uuid primary key references identity.tenants (id),
  prices_include_tax boolean not null default false,
  updated_at timestamptz not null default now()
);

-- A cart belongs to a customer (customer_id) or to a guest who holds its token (only its SHA-256
-- is stored), never both. currency is fixed by the first item added (or by the creator).
create table cart.carts (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  customer_id uuid references identity.users (id) on delete cascade,
  token_hash text unique check (token_hash ~ '^[0-9a-f]{64}$'),
  currency char(3) check (currency ~ '^[A-Z]{3}$'),
  shipping_address jsonb,
  billing_address jsonb,
  shipping_option_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Last use (a change or a read); idle carts are purged after MERCATO_CART_TTL_SECONDS.
  active_at timestamptz not null default now(),
  check ((customer_id is null) <> (token_hash is null))
);
create unique index carts_one_per_customer on cart.carts (tenant_id, customer_id) where customer_id is not null;
create index carts_idle on cart.carts (active_at);

-- A line holds what the shopper saw when they added it (titles, price) and is refreshed from the
-- catalog on every read and change; price_changed_from keeps the price they saw until they touch the line.
create table cart.lines (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  cart_id uuid not null references cart.carts (id) on delete cascade,
  variant_id uuid not null,
  product_id uuid not null,
  sku text not null check (length(sku) <= 200),
  product_title text not null,
  variant_title text not null,
  options jsonb not null default '{}',
  image text,
  quantity integer not null check (quantity between 1 and 1000),
  unit_price bigint not null check (unit_price >= 0),
  price_changed_from bigint check (price_changed_from >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (cart_id, variant_id)
);
create index lines_cart on cart.lines (tenant_id, cart_id);

-- Flat-rate shipping: a price per currency for the countries listed.
create table cart.shipping_options (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  name text not null check (length(name) between 1 and 200),
  countries text[] not null check (cardinality(countries) between 1 and 250),
  prices jsonb not null,
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index shipping_options_tenant on cart.shipping_options (tenant_id);

-- Tax rates in basis points (2000 = 20%) per country, optionally per region; the region's rate
-- wins over the country's.
create table cart.tax_rates (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  country char(2) not null check (country ~ '^[A-Z]{2}$'),
  region text check (length(region) between 1 and 100),
  rate_bps integer not null check (rate_bps between 0 and 10000),
  name text not null check (length(name) between 1 and 200),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index tax_rates_place on cart.tax_rates (tenant_id, country, coalesce(region, ''));

alter table cart.settings enable row level security;
alter table cart.carts enable row level security;
alter table cart.lines enable row level security;
alter table cart.shipping_options enable row level security;
alter table cart.tax_rates enable row level security;
alter table cart.settings force row level security;
-- Not forced: the purge job finds idle carts of every tenant as the owner (lines go by cascade).
alter table cart.lines force row level security;
alter table cart.shipping_options force row level security;
alter table cart.tax_rates force row level security;
create policy tenant_isolation on cart.settings
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on cart.carts
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on cart.lines
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on cart.shipping_options
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
create policy tenant_isolation on cart.tax_rates
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, insert, update, delete on cart.settings, cart.carts, cart.lines, cart.shipping_options,
  cart.tax_rates to mercato_app;
