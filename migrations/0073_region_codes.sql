-- Regions of the United States, Canada and Australia as ISO 3166-2 codes, in cart tax rates and
-- in address books (src/identity/addresses/regions.ts; src/cart/README.md "Regions",
-- src/identity/README.md "Addresses").
--
-- A region was free text. A tax rate for "California" did not apply to an address in "CA", and the
-- order was taxed at the country's rate or 0; the address book took any text ("Mass.", or none),
-- which the customer only learnt was wrong at the cart. Both now store a region of these
-- countries as its code (US-CA is "CA"). Stored rows naming a region (case-insensitive, spaces
-- around it ignored) are rewritten to its code; any other text, and a missing region, is left as
-- it was (the cart refuses such an address, asking to fix it).
--
-- A tax rate's rewrite never breaks the uniqueness of a place (tax_rates_place, 0020): a row
-- whose code a row of the tenant already has ("California" beside "CA"), or that a row created
-- before it (uuidv7 ids are in creation order) also names ("Quebec" then "Québec"), keeps its
-- region; the code's row is the one pricing picks first.
--
-- The names are those of regions.ts, in one list for both tables (cart-tax-region-migration.test.ts
-- and address-region-migration.test.ts rewrite every one of them). Tenant by tenant with
-- app.tenant_id set, so forced row-level security lets the rows be seen whether or not the
-- migrating role bypasses it.
create temporary table region_names (country text, code text, name text) on commit drop;
insert into region_names (country, code, name) values
  ('US', 'AL', 'Alabama'), ('US', 'AK', 'Alaska'), ('US', 'AZ', 'Arizona'),
  ('US', 'AR', 'Arkansas'), ('US', 'CA', 'California'), ('US', 'CO', 'Colorado'),
  ('US', 'CT', 'Connecticut'), ('US', 'DE', 'Delaware'), ('US', 'FL', 'Florida'),
  ('US', 'GA', 'Georgia'), ('US', 'HI', 'Hawaii'), ('US', 'ID', 'Idaho'),
  ('US', 'IL', 'Illinois'), ('US', 'IN', 'Indiana'), ('US', 'IA', 'Iowa'),
  ('US', 'KS', 'Kansas'), ('US', 'KY', 'Kentucky'), ('US', 'LA', 'Louisiana'),
  ('US', 'ME', 'Maine'), ('US', 'MD', 'Maryland'), ('US', 'MA', 'Massachusetts'),
  ('US', 'MI', 'Michigan'), ('US', 'MN', 'Minnesota'), ('US', 'MS', 'Mississippi'),
  ('US', 'MO', 'Missouri'), ('US', 'MT', 'Montana'), ('US', 'NE', 'Nebraska'),
  ('US', 'NV', 'Nevada'), ('US', 'NH', 'New Hampshire'), ('US', 'NJ', 'New Jersey'),
  ('US', 'NM', 'New Mexico'), ('US', 'NY', 'New York'), ('US', 'NC', 'North Carolina'),
  ('US', 'ND', 'North Dakota'), ('US', 'OH', 'Ohio'), ('US', 'OK', 'Oklahoma'),
  ('US', 'OR', 'Oregon'), ('US', 'PA', 'Pennsylvania'), ('US', 'RI', 'Rhode Island'),
  ('US', 'SC', 'South Carolina'), ('US', 'SD', 'South Dakota'), ('US', 'TN', 'Tennessee'),
  ('US', 'TX', 'Texas'), ('US', 'UT', 'Utah'), ('US', 'VT', 'Vermont'),
  ('US', 'VA', 'Virginia'), ('US', 'WA', 'Washington'), ('US', 'WV', 'West Virginia'),
  ('US', 'WI', 'Wisconsin'), ('US', 'WY', 'Wyoming'), ('US', 'DC', 'District of Columbia'),
  ('US', 'AS', 'American Samoa'), ('US', 'GU', 'Guam'),
  ('US', 'MP', 'Northern Mariana Islands'), ('US', 'PR', 'Puerto Rico'),
  ('US', 'VI', 'Virgin Islands, U.S.'), ('US', 'VI', 'U.S. Virgin Islands'),
  ('US', 'UM', 'United States Minor Outlying Islands'), ('US', 'AA', 'Armed Forces Americas'),
  ('US', 'AE', 'Armed Forces Europe'), ('US', 'AP', 'Armed Forces Pacific'),
  ('CA', 'AB', 'Alberta'), ('CA', 'BC', 'British Columbia'),
  ('CA', 'BC', 'Colombie-Britannique'), ('CA', 'MB', 'Manitoba'),
  ('CA', 'NB', 'New Brunswick'), ('CA', 'NB', 'Nouveau-Brunswick'),
  ('CA', 'NL', 'Newfoundland and Labrador'), ('CA', 'NL', 'Terre-Neuve-et-Labrador'),
  ('CA', 'NS', 'Nova Scotia'), ('CA', 'NS', 'Nouvelle-Écosse'),
  ('CA', 'NT', 'Northwest Territories'), ('CA', 'NT', 'Territoires du Nord-Ouest'),
  ('CA', 'NU', 'Nunavut'), ('CA', 'ON', 'Ontario'), ('CA', 'PE', 'Prince Edward Island'),
  ('CA', 'PE', 'Île-du-Prince-Édouard'), ('CA', 'QC', 'Quebec'), ('CA', 'QC', 'Québec'),
  ('CA', 'SK', 'Saskatchewan'), ('CA', 'YT', 'Yukon'),
  ('AU', 'ACT', 'Australian Capital Territory'), ('AU', 'NSW', 'New South Wales'),
  ('AU', 'NT', 'Northern Territory'), ('AU', 'QLD', 'Queensland'),
  ('AU', 'SA', 'South Australia'), ('AU', 'TAS', 'Tasmania'), ('AU', 'VIC', 'Victoria'),
  ('AU', 'WA', 'Western Australia');

do $$
declare
  t uuid;
begin
  for t in select id from identity.tenants order by id loop
    perform set_config('app.tenant_id', t::text, true);
    with named as (
      select r.id, r.country, n.code,
        row_number() over (partition by r.country, n.code order by r.id) as nth
      from cart.tax_rates r
      join region_names n on n.country = r.country and lower(n.name) = lower(btrim(r.region))
      where r.tenant_id = t
    )
    update cart.tax_rates r set region = named.code, updated_at = now()
    from named
    where r.tenant_id = t and r.id = named.id and named.nth = 1
      and not exists (
        select 1 from cart.tax_rates o
        where o.tenant_id = t and o.country = named.country and lower(o.region) = lower(named.code)
      );
    update identity.addresses a set region = n.code, updated_at = now()
    from region_names n
    where a.tenant_id = t and n.country = a.country and lower(n.name) = lower(btrim(a.region));
  end loop;
  perform set_config('app.tenant_id', '', true);
end
$$;
