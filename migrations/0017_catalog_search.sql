-- Catalog search (issue 10): one search document per product, a dictionary of the words shoppers
-- type (typo correction and autocomplete), per-variant stock levels fed by inventory events.
-- See src/catalog/search/README.md. The documents are derived data: indexProducts rebuilds them
-- from 0016's tables in the transaction of every catalog change.
create extension if not exists pg_trgm;
create schema if not exists catalog;
grant usage on schema catalog to mercato_app;

create table catalog.search_documents (
  tenant_id uuid not null references identity.tenants (id),
  product_id uuid not null,
  status text not null check (status in ('draft', 'active', 'archived')),
  handle text not null,
  title text not null,
  -- English configuration, weighted: title A; tags and category names (with ancestors) B;
  -- description C; attribute and option values, SKUs, barcodes D.
  document tsvector not null,
  -- The title, tags and category names alone (weights A and B of document): a text search takes
  -- its candidates from here first, so the products named by the query are never crowded out
  -- by ones that only mention it (see README, "Candidates").
  heading tsvector not null,
  -- The product's categories and all their ancestors (a filter on a category finds its subtree).
  category_ids uuid[] not null default '{}',
  tags text[] not null default '{}',
  -- Lower-cased 'key=value' pairs of the product's attributes and its variants' options.
  attributes text[] not null default '{}',
  -- Lowest variant price per currency, in minor units: {"EUR": 1999}.
  prices jsonb not null default '{}',
  in_stock boolean not null default false,
  -- The list item as GET /products answers it (in_stock is merged in when read).
  summary jsonb not null,
  created_at timestamptz not null,
  indexed_at timestamptz not null default now(),
  primary key (tenant_id, product_id)
);
create index search_documents_text on catalog.search_documents using gin (document);
create index search_documents_heading on catalog.search_documents using gin (heading);
create index search_documents_categories on catalog.search_documents using gin (category_ids);
create index search_documents_attributes on catalog.search_documents using gin (attributes);
create index search_documents_tags on catalog.search_documents using gin (tags);
-- Newest first, in index order; the status is filtered on the way (shoppers: nearly all rows pass).
create index search_documents_newest on catalog.search_documents (tenant_id, created_at desc, product_id desc);

-- Lowest price per product and currency, for price sorts and ranges in index order.
create table catalog.search_prices (
  tenant_id uuid not null references identity.tenants (id),
  product_id uuid not null,
  currency char(3) not null,
  status text not null,
  price bigint not null,
  primary key (tenant_id, product_id, currency)
);
create index search_prices_order on catalog.search_prices (tenant_id, currency, price, product_id);

-- The words of active products' titles, tags, categories and attribute values: what typo
-- correction (trigram similarity) and autocomplete (prefix) choose from. No unique key, so
-- concurrent writers never wait on each other (a rare duplicate is read with distinct); words of
-- products that are gone stay until a rebuild (they only ever match nothing).
create table catalog.search_terms (
  tenant_id uuid not null references identity.tenants (id),
  term text not null check (length(term) between 1 and 64)
);
create index search_terms_prefix on catalog.search_terms (tenant_id, term text_pattern_ops);
create index search_terms_trigram on catalog.search_terms using gin (term gin_trgm_ops);

-- Stock per variant and inventory location, kept by the catalog.stock-levels subscriber from
-- inventory events; a product is in stock when one of its variants has some available.
create table catalog.variant_stock (
  tenant_id uuid not null references identity.tenants (id),
  variant_id uuid not null,
  location_id uuid not null,
  product_id uuid,
  available integer not null,
  allow_backorder boolean not null default false,
  -- The time of the event that set this row: an older event arriving later changes nothing.
  event_time timestamptz not null,
  primary key (tenant_id, variant_id, location_id)
);
create index variant_stock_product on catalog.variant_stock (tenant_id, product_id);

alter table catalog.search_documents enable row level security;
create policy tenant_isolation on catalog.search_documents
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table catalog.search_prices enable row level security;
create policy tenant_isolation on catalog.search_prices
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table catalog.search_terms enable row level security;
create policy tenant_isolation on catalog.search_terms
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

alter table catalog.variant_stock enable row level security;
alter table catalog.variant_stock force row level security;
create policy tenant_isolation on catalog.variant_stock
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);

grant select, insert, update, delete on catalog.search_documents, catalog.search_prices,
  catalog.search_terms, catalog.variant_stock to mercato_app;

-- Searches read through these views, never the tables. PostgreSQL uses an operator as an index
-- condition under row-level security only if it is leakproof, and the ones search lives on are
-- not (@@ of full-text, && and @> of arrays, % of pg_trgm, LIKE): through the tables every search
-- was a sequential scan. A view reads its tables with its owner's rights, and the owner (who
-- migrates) is not subject to these three tables' policies (no FORCE on them), so each view
-- carries the same tenant condition itself, which the planner may then combine with any index.
-- The request role can only select from the views; what it writes still goes through the
-- tables' policies.
create view catalog.tenant_search_documents as
  select * from catalog.search_documents
  where tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid;
create view catalog.tenant_search_prices as
  select * from catalog.search_prices
  where tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid;
create view catalog.tenant_search_terms as
  select * from catalog.search_terms
  where tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid;
grant select on catalog.tenant_search_documents, catalog.tenant_search_prices,
  catalog.tenant_search_terms to mercato_app;
