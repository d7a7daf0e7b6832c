-- Handles no path can read, given before the catalog refused them (src/catalog/README.md,
-- "Handles"): a product or category handle shaped like a UUID (GET /products/{id} and
-- GET /categories/{id} read such a segment as an id), and the product handle `suggest`
-- (GET /products/suggest is autocomplete). Each is renamed as the create path names a product
-- whose title makes such a slug (freeHandle in src/catalog/products/product-write.ts): the handle
-- with the first free "-2", "-3", ... suffix in its tenant. Uniqueness per tenant holds: a
-- candidate is taken only when no row of the tenant has it, and two renamed handles never meet
-- (each is its own 36-character UUID or `suggest`, then a dash and digits).
--
-- A renamed product gets a new version (its ETag changes) and updated_at; its search document's
-- handle and list item follow, as do the breadcrumbs of list items naming a renamed category.
-- No product event is sent (as for a category renamed, README "Events"); the NOTIFY triggers of
-- 0016 and 0017 drop the product and search caches.
--
-- Tenant by tenant with app.tenant_id set, so forced row-level security lets the rows be seen
-- whether or not the migrating role bypasses it.
do $$
declare
  uuid_shape constant text := '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
  stamp constant timestamptz := date_trunc('milliseconds', now());
  stamp_text constant text := to_char(stamp at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
  t uuid;
  r record;
  n int;
  renamed text;
begin
  for t in select id from identity.tenants order by id loop
    perform set_config('app.tenant_id', t::text, true);

    for r in select id, handle from catalog.products
        where tenant_id = t and (handle ~ uuid_shape or handle = 'suggest') order by handle loop
      n := 2;
      while exists (select 1 from catalog.products where tenant_id = t and handle = r.handle || '-' || n) loop
        n := n + 1;
      end loop;
      renamed := r.handle || '-' || n;
      update catalog.products set handle = renamed, version = version + 1, updated_at = stamp
        where tenant_id = t and id = r.id;
      update catalog.search_documents
        set handle = renamed,
          summary = summary || jsonb_build_object('handle', renamed, 'updatedAt', stamp_text)
        where tenant_id = t and product_id = r.id;
    end loop;

    for r in select id, handle from catalog.categories
        where tenant_id = t and handle ~ uuid_shape order by handle loop
      n := 2;
      while exists (select 1 from catalog.categories where tenant_id = t and handle = r.handle || '-' || n) loop
        n := n + 1;
      end loop;
      renamed := r.handle || '-' || n;
      update catalog.categories set handle = renamed, updated_at = stamp where tenant_id = t and id = r.id;
      update catalog.search_documents d
        set summary = jsonb_set(d.summary, '{categories}', (
          select coalesce(jsonb_agg(case when c->>'id' = r.id::text
              then c || jsonb_build_object('handle', renamed) else c end order by i), '[]'::jsonb)
          from jsonb_array_elements(d.summary->'categories') with ordinality as e (c, i)))
        where d.tenant_id = t and d.summary->'categories' @> jsonb_build_array(jsonb_build_object('id', r.id::text));
    end loop;
  end loop;
  perform set_config('app.tenant_id', '', true);
end
$$;
