create schema identity;
grant usage on schema identity to mercato_app;

create table identity.tenants (
  id uuid primary key,
  slug text not null unique check (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
  name text not null check (length(name) between 1 and 200),
  status text not null default 'active' check (status in ('active', 'suspended')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- The platform tenant: its admins are the platform admins who create and list tenants.
insert into identity.tenants (id, slug, name) values ('00000000-0000-7000-8000-000000000001', 'platform', 'Platform');

create table identity.users (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  email text not null check (email = lower(email) and length(email) <= 254),
  password_hash text not null,
  name text not null,
  phone text,
  role text not null check (role in ('customer', 'staff', 'operator', 'admin')),
  status text not null default 'active' check (status in ('active', 'disabled')),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, email)
);

create table identity.addresses (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  user_id uuid not null references identity.users (id) on delete cascade,
  type text not null check (type in ('BILLING', 'SHIPPING')),
  recipient text not null,
  line1 text not null,
  line2 text,
  city text not null,
  region text,
  postal_code text not null,
  country char(2) not null,
  phone text,
  is_default boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index addresses_user on identity.addresses (tenant_id, user_id);
create unique index addresses_one_default_per_type on identity.addresses (user_id, type) where is_default;

-- Refresh tokens are stored as SHA-256 hashes. A family is one login: every rotation adds a
-- row to it, and presenting an already-rotated token revokes the whole family.
create table identity.refresh_tokens (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  user_id uuid not null references identity.users (id) on delete cascade,
  family_id uuid not null,
  token_hash text not null unique,
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  rotated_at timestamptz,
  revoked_at timestamptz
);
create index refresh_tokens_family on identity.refresh_tokens (family_id);
create index refresh_tokens_purge on identity.refresh_tokens (expires_at);

create table identity.api_keys (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  name text not null,
  prefix text not null,
  key_hash text not null unique,
  permissions text[] not null default '{}',
  created_by uuid references identity.users (id) on delete set null,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
create index api_keys_tenant on identity.api_keys (tenant_id);

-- Row-level security: the app role sees only the rows of the tenant set in app.tenant_id.
alter table identity.tenants enable row level security;
create policy tenant_isolation on identity.tenants
  using (id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table identity.users enable row level security;
create policy tenant_isolation on identity.users
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table identity.addresses enable row level security;
create policy tenant_isolation on identity.addresses
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table identity.refresh_tokens enable row level security;
create policy tenant_isolation on identity.refresh_tokens
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table identity.api_keys enable row level security;
create policy tenant_isolation on identity.api_keys
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

grant select on identity.tenants to mercato_app;
grant select, insert, update, delete on identity.users, identity.addresses, identity.refresh_tokens,
  identity.api_keys to mercato_app;
