-- Tax rate regions of the United States, Canada and Australia as ISO 3166-2 codes
-- (src/cart/regions.ts, src/cart/README.md "Regions").
--
-- A rate's region was free text matched to an address's region as text, so a rate for
-- "California" did not apply to an address in "CA" and the order was taxed at the country's rate
-- or 0. A rate's region in these countries is now stored as its code (US-CA is "CA"), and an
-- address's is read as its code. Rows stored with a region's name (case-insensitive, spaces
-- around it ignored) are rewritten to its code; any other text is left as it was.
--
-- A rewrite never breaks the uniqueness of a place (tax_rates_place, 0020): a row whose code a
-- row of the tenant already has ("California" beside "CA"), or that a row created before it
-- (uuidv7 ids are in creation order) also names ("Quebec" then "Québec"), keeps its region; the
-- code's row is the one pricing picks first.
--
-- The names are those of regions.ts (cart-tax-region-migration.test.ts rewrites every one).
-- Tenant by tenant with app.tenant_id set, so forced row-level security lets the rows be seen
-- whether or not the migrating role bypasses it.
do $$
declare
  t uuid;
begin
  for t in select id from identity.tenants order by id loop
    perform set_config('app.tenant_id', t::text, true);
    with names (country, code, name) as (values
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
      ('AU', 'WA', 'Western Australia')
    ), named as (
      select r.id, r.country, n.code,
        row_number() over (partition by r.country, n.code order by r.id) as nth
      from cart.tax_rates r
      join names n on n.country = r.country and lower(n.name) = lower(btrim(r.region))
      where r.tenant_id = t
    )
    update cart.tax_rates r set region = named.code, updated_at = now()
    from named
    where r.tenant_id = t and r.id = named.id and named.nth = 1
      and not exists (
        select 1 from cart.tax_rates o
        where o.tenant_id = t and o.country = named.country and lower(o.region) = lower(named.code)
      );
  end loop;
  perform set_config('app.tenant_id', '', true);
end
$$;
