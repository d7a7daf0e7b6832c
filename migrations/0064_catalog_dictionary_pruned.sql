-- Catalog (src/catalog): the search dictionary is pruned, and a new category is announced.
--
-- `search_documents.terms`: the dictionary words the product gave (its title, tags, category
-- names and attribute values, while active; '{}' otherwise), written by indexProducts. Null: a
-- document written before this migration, whose words are unknown until `mercato catalog
-- reindex` (or the product's next change) rebuilds it; no word of a tenant is pruned while one
-- of its active documents is null. A word no active document gives any more is removed from
-- `search_terms` (search/dictionary.ts): before, words of deleted, renamed or archived products
-- stayed for ever, suggested and offered as corrections though they found nothing.
alter table catalog.search_documents add column terms text[];
create index search_documents_terms on catalog.search_documents using gin (terms)
  with (fastupdate = off);
create index search_documents_unworded on catalog.search_documents (tenant_id)
  where terms is null and status = 'active';

-- Words a rebuild took away from a product, waiting to be checked (pruned by the next rebuild of
-- the tenant that finds no other rebuild under way, a bounded number at a time).
create table catalog.search_terms_stale (
  tenant_id uuid not null references identity.tenants (id),
  term text not null,
  primary key (tenant_id, term)
);
alter table catalog.search_terms_stale enable row level security;
create policy tenant_isolation on catalog.search_terms_stale
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, insert, update, delete on catalog.search_terms_stale to mercato_app;

-- The view takes the new column (`select *` is expanded when a view is made).
create or replace view catalog.tenant_search_documents as
  select * from catalog.search_documents
  where tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid;

-- A category created is announced like one changed or deleted ('<tenant id>:*'): every process
-- drops the tenant's cached category pages (GET /categories) as soon as it commits.
create trigger categories_created after insert on catalog.categories
  for each row execute function catalog.notify_product_changed();
