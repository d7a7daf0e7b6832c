-- Search answers are reused per process for a short while (src/catalog/search/search-cache.ts).
-- Every statement that changes a tenant's search documents (a product written, its stock flag
-- flipped, a category renamed into its breadcrumbs) announces the tenant on commit, once per
-- tenant and transaction, which drops that tenant's cached answers on every process.
create function catalog.notify_search_changed() returns trigger language plpgsql as $$
declare
  t uuid;
begin
  for t in select distinct tenant_id from changed loop
    perform pg_notify('mercato_catalog_search', t::text);
  end loop;
  return null;
end
$$;

create trigger search_documents_inserted after insert on catalog.search_documents
  referencing new table as changed for each statement execute function catalog.notify_search_changed();
create trigger search_documents_updated after update on catalog.search_documents
  referencing new table as changed for each statement execute function catalog.notify_search_changed();
create trigger search_documents_deleted after delete on catalog.search_documents
  referencing old table as changed for each statement execute function catalog.notify_search_changed();
