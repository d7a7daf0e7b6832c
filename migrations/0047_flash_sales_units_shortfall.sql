-- A flash sale's units may come down to 0 (they were at least 1). An admission batch that finds
-- the sale's pool holding fewer units than the record counts as left (a bug, a change to the pool
-- behind the sale's back, a crash between two steps) lowers the record's units to what the pool
-- holds, sells that and answers the rest sold out (admission-committer.ts); a pool found empty
-- before anything was admitted leaves 0. Creating or changing a sale still asks for at least 1.
alter table flash_sales.campaigns drop constraint campaigns_units_check;
alter table flash_sales.campaigns add constraint campaigns_units_check check (units between 0 and 1000000);
