-- Captures no longer queue on their groups' rows (issue 13: capture at least 5,000 a second).
-- Each capture added its exceptions, occurrences, severity and times to the rows of the groups
-- they landed in, locked until its commit; a tenant's captures share their groups (a handful of
-- fingerprints), so they ran one at a time from that update to their commit, and every insert of
-- a group waited on the rows those updates rewrote. Now a capture appends its credit per group
-- here (no lock, no wait) and marks its tenant in exceptions.rollup_dirty; the fold job, and every
-- read of groups first, add the credits to the groups (exceptions.fold_group_credits).
create table exceptions.group_credits (
  tenant_id uuid not null,
  group_id uuid not null,
  -- New exceptions in the group (negative: moved out of it by a repeat with another reason).
  exceptions integer not null,
  occurrences integer not null,
  -- The highest severity of the credit, null when it has none.
  severity text,
  first_seen timestamptz,
  last_seen timestamptz
);
create index group_credits_tenant on exceptions.group_credits (tenant_id);
alter table exceptions.group_credits enable row level security;
alter table exceptions.group_credits force row level security;
create policy tenant_isolation on exceptions.group_credits
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant select, insert, delete on exceptions.group_credits to mercato_app;

-- Adds the current tenant's credits to its groups, in one statement: the credits it takes are
-- deleted, summed per group (the highest severity, the earliest first and latest last seen) and
-- added to the groups' rows, locked in id order first so two folds queue rather than deadlock
-- (one that still did would fail and its tenant be folded again on the next run). A credit committed
-- meanwhile waits for the next fold; of two folds taking the same credits, the second finds them
-- gone and adds only what it deleted itself. Returns the groups it updated.
create function exceptions.fold_group_credits() returns integer
language plpgsql as $$
declare
  n integer;
begin
  -- The groups of the credits there now, locked in id order first (another fold waits here).
  perform 1 from exceptions.groups g
  where g.id = any (array(select distinct group_id from exceptions.group_credits))
  order by g.id for no key update;
  with taken as (
    delete from exceptions.group_credits returning *
  ), summed as (
    select group_id, sum(exceptions)::integer as exceptions, sum(occurrences)::bigint as occurrences,
      (array['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'])[max(array_position(array['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'],
        severity))] as severity,
      min(first_seen) as first_seen, max(last_seen) as last_seen
    from taken group by group_id
  ), updated as (
    update exceptions.groups g set
      exceptions = greatest(0, g.exceptions + s.exceptions),
      occurrences = g.occurrences + s.occurrences,
      severity = case when s.severity is not null and array_position(array['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'],
          s.severity) > array_position(array['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], g.severity)
        then s.severity else g.severity end,
      first_seen = least(g.first_seen, coalesce(s.first_seen, g.first_seen)),
      last_seen = greatest(g.last_seen, coalesce(s.last_seen, g.last_seen))
    from summed s
    where g.id = s.group_id
    returning g.id
  )
  select count(*) into n from updated;
  return n;
end $$;
