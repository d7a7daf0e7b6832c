-- mercato:no-transaction
-- The open alerts of a tenant (fired-alert-store.ts, listFired with state=open, newest first): the
-- only index by tenant, alerts_tenant (tenant_id, fired_at desc, id desc), holds every alert ever
-- fired, so a page of open ones walked past all the acknowledged alerts newer than them (and with
-- few open alerts, all of the tenant's). This partial index holds the open ones only, in the page's
-- order: a page reads its rows and no more, however many alerts were acknowledged. alerts_open
-- (rule_id, group_id) stays: it decides one open alert per rule and group when firing.
--
-- Built concurrently, outside a transaction (DEVELOPERS.md, "Migrations"): every capture that
-- fires writes exceptions.alerts, and a plain build on a big table blocked them until it finished.
-- Each statement may run again after a failure or a crash: an INVALID index a failed build left is
-- dropped first.
drop index concurrently if exists exceptions.alerts_open_tenant;
-- mercato:split
create index concurrently alerts_open_tenant on exceptions.alerts (tenant_id, fired_at desc, id desc)
  where acknowledged_at is null;
