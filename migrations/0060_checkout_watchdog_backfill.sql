-- Sagas left compensating without a watchdog get one; a saga has one watchdog at a time.
--
-- `watchdog`: the saga's watchdog, when one was written for it since the checkout began (a
-- cancel of the completed order, a give-back reopened, this backfill): a watchdog naming another
-- (or none, one the checkout wrote as it began) ends when it comes, writing no next one. Before,
-- a cancel right after a checkout left two going on (the checkout's last, still to come, and the
-- cancel's), and a compensation that kept failing put both in the dead letters.
alter table checkout.sagas add column watchdog uuid;
--
-- Before this release a cancel of a completed order turned its saga to compensating without a
-- watchdog (the completed saga's had stopped), so a saga whose undoing a crash cut short, or
-- whose compensation failed a whole run's attempts, stayed compensating with nothing to resume
-- it: its customer charged, its order still completed. A watchdog is a delayed message of the
-- WAL (order-events), which SQL cannot write on every backend (Redis Streams, NATS), so this
-- lists the sagas compensating now, and each process's checkout, as it starts, takes the rows of
-- each tenant (delete ... returning: each saga once, whichever process takes it) and writes a
-- watchdog for each in the same transaction (src/checkout/watchdog-backfill.ts), naming it the
-- saga's, so one it had already ends when it comes.
create table checkout.watchdog_backfill (
  saga_id uuid primary key,
  tenant_id uuid not null references identity.tenants (id),
  order_id uuid not null
);
alter table checkout.watchdog_backfill enable row level security;
alter table checkout.watchdog_backfill force row level security;
create policy tenant_isolation on checkout.watchdog_backfill
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, delete on checkout.watchdog_backfill to mercato_app;

insert into checkout.watchdog_backfill (saga_id, tenant_id, order_id)
  select id, tenant_id, order_id from checkout.sagas where status = 'compensating';
