-- Catalog (issue 10): products with their variants, and a tree of categories.
-- See src/catalog/README.md. Search documents live in 0017 (src/catalog/search).
create schema catalog;
grant usage on schema catalog to mercato_app;

create table catalog.products (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  handle text not null check (handle ~ '^[a-z0-9]+(?:-[a-z0-9]+)*$' and length(handle) <= 255),
  title text not null check (length(title) between 1 and 255),
  description text not null default '' check (length(description) <= 20000),
  status text not null default 'draft' check (status in ('draft', 'active', 'archived')),
  tags text[] not null default '{}' check (cardinality(tags) <= 50),
  attributes jsonb not null default '{}' check (jsonb_typeof(attributes) = 'object'),
  images jsonb not null default '[]' check (jsonb_typeof(images) = 'array'),
  seo jsonb not null default '{}' check (jsonb_typeof(seo) = 'object'),
  published_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  version int not null default 1,
  unique (tenant_id, handle)
);
create index products_listing on catalog.products (tenant_id, status, created_at desc, id);

create table catalog.variants (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  product_id uuid not null references catalog.products (id) on delete cascade,
  sku text not null check (length(sku) between 1 and 100),
  title text not null default '' check (length(title) <= 255),
  options jsonb not null default '{}' check (jsonb_typeof(options) = 'object'),
  prices jsonb not null default '{}' check (jsonb_typeof(prices) = 'object'),
  compare_at_prices jsonb not null default '{}' check (jsonb_typeof(compare_at_prices) = 'object'),
  weight_grams int check (weight_grams >= 0),
  barcode text check (length(barcode) <= 64),
  position int not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, sku)
);
create index variants_product on catalog.variants (product_id, position, id);

create table catalog.categories (
  id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  parent_id uuid references catalog.categories (id),
  name text not null check (length(name) between 1 and 200),
  handle text not null check (handle ~ '^[a-z0-9]+(?:-[a-z0-9]+)*$' and length(handle) <= 255),
  description text not null default '' check (length(description) <= 5000),
  position int not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, handle),
  check (parent_id is distinct from id)
);
create index categories_parent on catalog.categories (tenant_id, parent_id, position);

-- A category with products cannot be deleted (409 CATEGORY_IN_USE): the restrict says so too.
create table catalog.product_categories (
  tenant_id uuid not null references identity.tenants (id),
  product_id uuid not null references catalog.products (id) on delete cascade,
  category_id uuid not null references catalog.categories (id) on delete restrict,
  primary key (product_id, category_id)
);
create index product_categories_category on catalog.product_categories (tenant_id, category_id);

alter table catalog.products enable row level security;
alter table catalog.products force row level security;
create policy tenant_isolation on catalog.products
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table catalog.variants enable row level security;
alter table catalog.variants force row level security;
create policy tenant_isolation on catalog.variants
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table catalog.categories enable row level security;
alter table catalog.categories force row level security;
create policy tenant_isolation on catalog.categories
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table catalog.product_categories enable row level security;
alter table catalog.product_categories force row level security;
create policy tenant_isolation on catalog.product_categories
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

grant select, insert, update, delete on catalog.products, catalog.variants, catalog.categories,
  catalog.product_categories to mercato_app;

-- Product reads are cached per process (src/catalog/products/product-cache.ts). Every change to
-- a product, its variants or its categories is announced on commit as '<tenant id>:<product id>';
-- a change to a category (its name or handle appear in product reads) as '<tenant id>:*', which
-- drops the tenant's whole cache.
create function catalog.notify_product_changed() returns trigger language plpgsql as $$
declare
  r record := coalesce(new, old);
begin
  if tg_table_name = 'products' then
    perform pg_notify('mercato_catalog_products', r.tenant_id::text || ':' || r.id::text);
  elsif tg_table_name = 'categories' then
    perform pg_notify('mercato_catalog_products', r.tenant_id::text || ':*');
  else
    perform pg_notify('mercato_catalog_products', r.tenant_id::text || ':' || r.product_id::text);
  end if;
  return null;
end
$$;

create trigger products_changed after insert or update or delete on catalog.products
  for each row execute function catalog.notify_product_changed();
create trigger variants_changed after insert or update or delete on catalog.variants
  for each row execute function catalog.notify_product_changed();
create trigger product_categories_changed after insert or update or delete on catalog.product_categories
  for each row execute function catalog.notify_product_changed();
create trigger categories_changed after update or delete on catalog.categories
  for each row execute function catalog.notify_product_changed();
