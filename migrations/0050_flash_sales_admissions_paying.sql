-- mercato:no-transaction
-- The lifecycle's sweep of admissions left `paying` by an order event that never came
-- (src/flash-sales/paying-sweep.ts) reads, every tick, the tenants and then each tenant's admissions
-- paying past their deadline and a grace. admissions_waiting covers only `admitted` ones, so
-- without this index each tick read every admission of every sale. Partial and small: an
-- admission is paying only while its checkout saga runs.
--
-- Built concurrently, outside a transaction (DEVELOPERS.md, "Migrations"): admissions are written
-- at a stampede's rate. Each statement may run again after a failure or a crash: an INVALID index
-- a failed build left is dropped first.
drop index concurrently if exists flash_sales.admissions_paying;
-- mercato:split
create index concurrently admissions_paying on flash_sales.admissions (pay_by) where status = 'paying';
