-- Captures no longer queue on the summary's rollup (issue 13: capture at least 5,000 a second).
-- Migration 0032's triggers upserted each statement's deltas into the rows of their keys under a
-- per-tenant lock held until commit: every capture of a tenant touches the current hour and day,
-- so its captures ran one at a time from their upsert to their commit, whatever the cores. Now
-- each statement appends its deltas as new rows (`folded` false), which takes no lock and waits
-- for nobody; readers already add up every row of a key (summary.ts sums its cells), so several
-- rows of one key count as their sum. exceptions.fold_counts() folds the appended rows of each
-- key into one (dropping keys whose sum is zero); the collector runs it every few seconds for the
-- tenants exceptions.rollup_dirty names (src/exceptions/rollup-fold.ts).
do $$
declare t text;
begin
  foreach t in array array['hourly_counts', 'daily_counts', 'hourly_totals', 'daily_totals'] loop
    execute format('alter table exceptions.%I drop constraint %I', t, t || '_pkey');
    execute format('alter table exceptions.%I add column folded boolean not null default true', t);
  end loop;
end $$;
-- The keys' rows, as the primary keys were (the summary reads a tenant's range of hours or days).
create index hourly_counts_key on exceptions.hourly_counts (tenant_id, hour, interface_type, severity, category, status);
create index daily_counts_key on exceptions.daily_counts (tenant_id, day, interface_type, severity, category, status);
create index hourly_totals_key on exceptions.hourly_totals (tenant_id, hour, dimension, value);
create index daily_totals_key on exceptions.daily_totals (tenant_id, day, dimension, value);
-- What the next fold reads: only the appended rows.
create index hourly_counts_unfolded on exceptions.hourly_counts (tenant_id, hour) where not folded;
create index daily_counts_unfolded on exceptions.daily_counts (tenant_id, day) where not folded;
create index hourly_totals_unfolded on exceptions.hourly_totals (tenant_id, hour) where not folded;
create index daily_totals_unfolded on exceptions.daily_totals (tenant_id, day) where not folded;

-- The tenants whose rows wait to be folded: one row per tenant per counting statement, appended
-- (no key, so no writer waits on another). The fold job reads and empties it as the table's owner
-- (its policy is not forced: the owner reads every tenant's); a request may only add its own
-- tenant's. The rollup tables' policies are forced, so the fold itself runs per tenant.
create table exceptions.rollup_dirty (tenant_id uuid not null);
alter table exceptions.rollup_dirty enable row level security;
create policy tenant_isolation on exceptions.rollup_dirty
  using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
  with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid);
grant insert on exceptions.rollup_dirty to mercato_app;

-- As 0032's, with its upserts, lock and clean-up replaced by four inserts and a mark.
create or replace function exceptions.count_exceptions() returns trigger
language plpgsql as $$
declare
  counted constant text :=
    'tenant_id, interface_type, severity, category, status, last_seen, first_seen, resolved_at';
  changed text;
begin
  if tg_op = 'INSERT' then
    if not exists (select from new_rows) then return null; end if;
    changed := format('select 1 as sign, %s from new_rows', counted);
  elsif tg_op = 'DELETE' then
    if not exists (select from old_rows) then return null; end if;
    changed := format('select -1 as sign, %s from old_rows', counted);
  else
    -- Most updates (a retry count, a note, a payload) change nothing counted: no work.
    if not exists (select from new_rows n join old_rows o on o.id = n.id
      where (n.tenant_id, n.interface_type, n.severity, n.category, n.status, n.last_seen, n.first_seen,
        n.resolved_at) is distinct from (o.tenant_id, o.interface_type, o.severity, o.category, o.status,
        o.last_seen, o.first_seen, o.resolved_at)) then
      return null;
    end if;
    changed := format('select 1 as sign, %1$s from new_rows union all select -1, %1$s from old_rows', counted);
  end if;
  if tg_op = 'DELETE' then
    insert into exceptions.rollup_dirty select distinct tenant_id from old_rows;
  else
    insert into exceptions.rollup_dirty select distinct tenant_id from new_rows;
  end if;
  execute exceptions.rollup_statement(changed, $a$,
    hours as (
      insert into exceptions.hourly_counts (tenant_id, hour, interface_type, severity, category, status,
        exceptions, resolved, resolve_ms, folded)
      select tenant_id, start, interface_type, severity, category, status, exceptions, resolved, resolve_ms, false
      from deltas where width = 'hour'
    ),
    days as (
      insert into exceptions.daily_counts (tenant_id, day, interface_type, severity, category, status,
        exceptions, resolved, resolve_ms, folded)
      select tenant_id, start, interface_type, severity, category, status, exceptions, resolved, resolve_ms, false
      from deltas where width = 'day'
    ),
    hour_totals as (
      insert into exceptions.hourly_totals (tenant_id, hour, dimension, value, exceptions, resolved,
        resolve_ms, folded)
      select tenant_id, start, dimension, value, exceptions, resolved, resolve_ms, false
      from totals where width = 'hour'
    )
    insert into exceptions.daily_totals (tenant_id, day, dimension, value, exceptions, resolved,
      resolve_ms, folded)
    select tenant_id, start, dimension, value, exceptions, resolved, resolve_ms, false
    from totals where width = 'day'$a$);
  return null;
end $$;

-- Folds the appended rows: for each key with some, deletes all its rows and inserts their sum
-- (none when it is zero), in one statement per table; returns how many rows it deleted. The keys'
-- hours (days) as one array make the delete an index scan of those hours, not of the table. Safe
-- beside captures and other folds: a delete takes only the rows its snapshot sees (a delta
-- committed meanwhile waits for the next fold), and of two folds of the same rows the second finds
-- them gone and inserts only the sums of the rows it deleted itself. Readers see a key's rows
-- before the fold or after it, never both. Runs as the caller, on the rows its tenant's policy
-- shows: the current tenant's.
create function exceptions.fold_counts() returns bigint
language plpgsql as $$
declare
  t record;
  n bigint;
  total bigint := 0;
begin
  -- Each table, its time column and its key: one statement text for the four.
  for t in select * from (values
    ('hourly_counts', 'hour', 'interface_type, severity, category, status'),
    ('daily_counts', 'day', 'interface_type, severity, category, status'),
    ('hourly_totals', 'hour', 'dimension, value'),
    ('daily_totals', 'day', 'dimension, value')) as v(tbl, at, keys)
  loop
    execute format($q$
      with keys as (
        select distinct tenant_id, %2$I, %3$s from exceptions.%1$I where not folded
      ), gone as (
        delete from exceptions.%1$I t using keys k
        where t.%2$I = any (array(select distinct %2$I from keys))
          and (t.tenant_id, t.%2$I, %4$s) = (k.tenant_id, k.%2$I, %5$s)
        returning t.*
      ), kept as (
        insert into exceptions.%1$I (tenant_id, %2$I, %3$s, exceptions, resolved, resolve_ms)
        select tenant_id, %2$I, %3$s, sum(exceptions), sum(resolved), sum(resolve_ms)
        from gone group by tenant_id, %2$I, %3$s
        having sum(exceptions) <> 0 or sum(resolved) <> 0 or sum(resolve_ms) <> 0
        order by tenant_id, %2$I, %3$s
      )
      select count(*) from gone$q$,
      t.tbl, t.at, t.keys,
      (select string_agg('t.' || k, ', ') from unnest(string_to_array(t.keys, ', ')) k),
      (select string_agg('k.' || k, ', ') from unnest(string_to_array(t.keys, ', ')) k))
    into n;
    total := total + n;
  end loop;
  return total;
end $$;
