-- A tax rate's region matches an address's region whatever its case (cart/tax-store.ts rateFor),
-- so two rates whose regions differ only in case ("CA" and "ca") would make the rate applied
-- arbitrary: the uniqueness of a place ignores case too.
drop index cart.tax_rates_place;
create unique index tax_rates_place on cart.tax_rates (tenant_id, country, lower(coalesce(region, '')));
