-- The expiry sweeper's turn-taking over tenants (src/inventory/expiry-sweeper.ts).
--
-- The sweeper looked for due reservations among the 1,000 that fell due first, across tenants:
-- one tenant with a backlog of expired reservations (thousands of its own, reserved and left to
-- lapse) filled that window, and every other tenant's expired reservations kept holding their
-- stock until that backlog was worked off. With this index, the sweeper walks the tenants with
-- active reservations (one index probe each: a tenant's first entry is its earliest expiry) and
-- takes each due tenant in turn, one batch per round, from where the last round stopped.
create index reservations_tenant_expiry on inventory.reservations (tenant_id, expires_at)
  where status = 'active';
