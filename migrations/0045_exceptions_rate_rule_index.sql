-- mercato:no-transaction
-- Rate alert rules count a group's exceptions seen within the rule's window (rate-rules.ts,
-- rateCountQuery). Through exceptions_newest (tenant, last seen) each count read every exception
-- of the tenant within the window (up to a week) to keep those of the batch's groups, once per
-- rate rule: a tenant with a million recent exceptions and many rate rules made every capture
-- batch take seconds, and on PGlite (one connection) every other tenant's requests waited too.
-- This index reads one group's window from its newest row back, index only (the rule's filters
-- and the policy's tenant are included), and the count stops at the threshold + 1: its cost no
-- longer grows with the tenant's exceptions. It replaces exceptions_group (group_id), whose
-- lookups (the impact, the groups' pages, the cascade from groups) it serves as well, so a
-- capture maintains as many indexes as before.
--
-- Built concurrently, outside a transaction (DEVELOPERS.md, "Migrations"): on a big exceptions
-- table a plain build blocked every capture until it finished. Each statement may run again after
-- a failure or a crash: an INVALID index a failed build left is dropped first. (The first release
-- of this file built it in a transaction; databases that applied it then are not touched again.)
drop index concurrently if exists exceptions.exceptions_group_seen;
-- mercato:split
create index concurrently exceptions_group_seen on exceptions.exceptions (group_id, last_seen desc)
  include (tenant_id, interface_type, category, severity);
-- mercato:split
drop index concurrently if exists exceptions.exceptions_group;
