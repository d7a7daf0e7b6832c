-- The exception summary's rollup (issue 13: summary p95 under 100 ms at 1,000,000 rows).
-- GET /exceptions/summary read every row of its range (a month at 1,000,000 rows over 90 days
-- took about 340 ms). It now reads counts kept here for the whole days and hours of its range and
-- the rows of the partial hours at its edges only (src/exceptions/summary-rollup.ts).
--
-- Each exception contributes twice, to the UTC hour and day (date_bin from 2000-01-01Z, as the
-- summary buckets) of two of its times:
-- - `exceptions`: 1 in the hour and the day of its last_seen, the column the summary's range
--   filters and buckets on, so the counts are the rows' own; a repeat that moves last_seen moves
--   it to another hour.
-- - `resolved` and `resolve_ms`: when it has a resolved_at, 1 and resolved_at - first_seen in
--   whole milliseconds in the hour and the day of resolved_at, the column the mean time to
--   resolve filters on (integers: however often rows come and go, the sums stay exact, which a
--   float sum would not).
-- Two shapes of each:
-- - hourly_counts and daily_counts, per key (interface type, severity, category, status): a
--   summary filtered on any of those four adds up the keys it matches.
-- - hourly_totals and daily_totals, per dimension and value (interface_type = ORDER, status =
--   NEW, ...: 22 rows an hour at most): an unfiltered summary, the common one, reads these. At
--   1,000,000 exceptions over 90 days an hour holds some 460 exceptions over some 320 keys, so per
--   key alone an unfiltered month would still read 16,000 daily and 8,000 hourly rows.
-- Days as well as hours: hourly rows alone barely shrink a month at that density (333,000 rows,
-- 230,000 hourly keys).
create table exceptions.hourly_counts (
  tenant_id uuid not null references identity.tenants (id),
  hour timestamptz not null,
  interface_type text not null,
  severity text not null,
  category text not null,
  status text not null,
  exceptions bigint not null default 0,
  resolved bigint not null default 0,
  resolve_ms bigint not null default 0,
  primary key (tenant_id, hour, interface_type, severity, category, status)
);
create table exceptions.daily_counts (like exceptions.hourly_counts including defaults);
alter table exceptions.daily_counts rename column hour to day;
alter table exceptions.daily_counts add primary key (tenant_id, day, interface_type, severity, category, status),
  add foreign key (tenant_id) references identity.tenants (id);

create table exceptions.hourly_totals (
  tenant_id uuid not null references identity.tenants (id),
  hour timestamptz not null,
  -- interface_type, severity, category or status, and its value.
  dimension text not null,
  value text not null,
  exceptions bigint not null default 0,
  resolved bigint not null default 0,
  resolve_ms bigint not null default 0,
  primary key (tenant_id, hour, dimension, value)
);
create table exceptions.daily_totals (like exceptions.hourly_totals including defaults);
alter table exceptions.daily_totals rename column hour to day;
alter table exceptions.daily_totals add primary key (tenant_id, day, dimension, value),
  add foreign key (tenant_id) references identity.tenants (id);

-- An exception's contributions, signed: `width` says hour or day, `start` which one. Inlined
-- where it is called (a SQL function of one SELECT is expanded in place).
create function exceptions.rollup_parts(last_seen timestamptz, first_seen timestamptz,
  resolved_at timestamptz, sign integer)
returns table (width text, start timestamptz, exceptions integer, resolved integer, resolve_ms bigint)
language sql immutable as $$
  select p.width, p.start, sign * p.exceptions, sign * p.resolved, sign * p.resolve_ms
  from (values
    ('hour', date_bin('1 hour', last_seen, timestamptz '2000-01-01Z'), 1, 0, 0::bigint),
    ('day', date_bin('1 day', last_seen, timestamptz '2000-01-01Z'), 1, 0, 0::bigint),
    ('hour', date_bin('1 hour', resolved_at, timestamptz '2000-01-01Z'), 0, 1,
      round(extract(epoch from resolved_at - first_seen) * 1000)::bigint),
    ('day', date_bin('1 day', resolved_at, timestamptz '2000-01-01Z'), 0, 1,
      round(extract(epoch from resolved_at - first_seen) * 1000)::bigint)
  ) as p(width, start, exceptions, resolved, resolve_ms)
  where p.start is not null
$$;

-- The per-key deltas (or counts) of `changed` rows (sign, tenant_id, the four keys, last_seen,
-- first_seen, resolved_at), and the per-dimension ones summed from them: the one statement the
-- trigger and the backfill share, as text for EXECUTE with %1$s the changed rows and %2$s what is
-- done with `deltas` and `totals`.
create function exceptions.rollup_statement(changed text, action text) returns text
language sql immutable as $$
  select format($q$
    with changed as (%1$s),
    deltas as (
      select p.width, c.tenant_id, p.start, c.interface_type, c.severity, c.category, c.status,
        sum(p.exceptions)::bigint as exceptions, sum(p.resolved)::bigint as resolved,
        sum(p.resolve_ms)::bigint as resolve_ms
      from changed c
      cross join lateral exceptions.rollup_parts(c.last_seen, c.first_seen, c.resolved_at, c.sign) p
      group by 1, 2, 3, 4, 5, 6, 7
      having sum(p.exceptions) <> 0 or sum(p.resolved) <> 0 or sum(p.resolve_ms) <> 0
    ),
    totals as (
      select k.width, k.tenant_id, k.start, d.dimension, d.value, sum(k.exceptions)::bigint as exceptions,
        sum(k.resolved)::bigint as resolved, sum(k.resolve_ms)::bigint as resolve_ms
      from deltas k cross join lateral (values ('interface_type', k.interface_type),
        ('severity', k.severity), ('category', k.category), ('status', k.status)) as d(dimension, value)
      group by 1, 2, 3, 4, 5
      having sum(k.exceptions) <> 0 or sum(k.resolved) <> 0 or sum(k.resolve_ms) <> 0
    )
    %2$s$q$, changed, action)
$$;

-- Kept by statement-level triggers on exceptions.exceptions: each INSERT, UPDATE or DELETE
-- statement subtracts its old rows' contributions and adds its new rows', summed per key and per
-- dimension, in one upsert per table (capture writes hundreds of rows per statement). An update
-- that changes none of the counted columns (a retry count, a note, a payload) is left at once.
-- Counts that fall to zero are deleted: the tables hold only what counts something. The function
-- runs with the writer's rights: a request's transaction writes only its own tenant's counts (the
-- policies below), and the owner writing exceptions without a tenant set fails here rather than
-- miscount. The statements differ only in where their changed rows come from (transition tables
-- exist only in their own kind of trigger), hence one statement text built from a fixed choice.
create function exceptions.count_exceptions() returns trigger
language plpgsql as $$
declare
  counted constant text :=
    'tenant_id, interface_type, severity, category, status, last_seen, first_seen, resolved_at';
  changed text;
  emptied_hours exceptions.hourly_counts[];
  emptied_days exceptions.daily_counts[];
  emptied_hour_totals exceptions.hourly_totals[];
  emptied_day_totals exceptions.daily_totals[];
begin
  -- One writer of a tenant's counts at a time, until it commits: the rows of the current hour and
  -- day are every capture's, and an upsert statement fires two triggers (its updates', then its
  -- inserts'), whose keys no one order can cover: concurrent captures deadlocked on them. Taken
  -- per tenant the statement touches, in order; the writers queued on the hot rows anyway.
  if tg_op = 'INSERT' then
    if not exists (select from new_rows) then return null; end if;
    perform pg_advisory_xact_lock(1537000032, hashtext(tenant_id::text))
    from (select distinct tenant_id from new_rows order by 1) as t;
    changed := format('select 1 as sign, %s from new_rows', counted);
  elsif tg_op = 'DELETE' then
    if not exists (select from old_rows) then return null; end if;
    perform pg_advisory_xact_lock(1537000032, hashtext(tenant_id::text))
    from (select distinct tenant_id from old_rows order by 1) as t;
    changed := format('select -1 as sign, %s from old_rows', counted);
  else
    -- Most updates (a retry count, a note, a payload) change nothing counted: no lock, no work.
    if not exists (select from new_rows n join old_rows o on o.id = n.id
      where (n.tenant_id, n.interface_type, n.severity, n.category, n.status, n.last_seen, n.first_seen,
        n.resolved_at) is distinct from (o.tenant_id, o.interface_type, o.severity, o.category, o.status,
        o.last_seen, o.first_seen, o.resolved_at)) then
      return null;
    end if;
    perform pg_advisory_xact_lock(1537000032, hashtext(tenant_id::text))
    from (select tenant_id from new_rows union select tenant_id from old_rows order by 1) as t;
    changed := format('select 1 as sign, %1$s from new_rows union all select -1, %1$s from old_rows', counted);
  end if;
  execute exceptions.rollup_statement(changed, $a$,
    hours as (
      insert into exceptions.hourly_counts as t
      select tenant_id, start, interface_type, severity, category, status, exceptions, resolved, resolve_ms
      from deltas where width = 'hour'
      order by tenant_id, start, interface_type, severity, category, status
      on conflict (tenant_id, hour, interface_type, severity, category, status) do update set
        exceptions = t.exceptions + excluded.exceptions, resolved = t.resolved + excluded.resolved,
        resolve_ms = t.resolve_ms + excluded.resolve_ms
      returning t as counts
    ),
    days as (
      insert into exceptions.daily_counts as t
      select tenant_id, start, interface_type, severity, category, status, exceptions, resolved, resolve_ms
      from deltas where width = 'day'
      order by tenant_id, start, interface_type, severity, category, status
      on conflict (tenant_id, day, interface_type, severity, category, status) do update set
        exceptions = t.exceptions + excluded.exceptions, resolved = t.resolved + excluded.resolved,
        resolve_ms = t.resolve_ms + excluded.resolve_ms
      returning t as counts
    ),
    hour_totals as (
      insert into exceptions.hourly_totals as t
      select tenant_id, start, dimension, value, exceptions, resolved, resolve_ms
      from totals where width = 'hour'
      order by tenant_id, start, dimension, value
      on conflict (tenant_id, hour, dimension, value) do update set
        exceptions = t.exceptions + excluded.exceptions, resolved = t.resolved + excluded.resolved,
        resolve_ms = t.resolve_ms + excluded.resolve_ms
      returning t as counts
    ),
    day_totals as (
      insert into exceptions.daily_totals as t
      select tenant_id, start, dimension, value, exceptions, resolved, resolve_ms
      from totals where width = 'day'
      order by tenant_id, start, dimension, value
      on conflict (tenant_id, day, dimension, value) do update set
        exceptions = t.exceptions + excluded.exceptions, resolved = t.resolved + excluded.resolved,
        resolve_ms = t.resolve_ms + excluded.resolve_ms
      returning t as counts
    )
    select (select array_agg(counts) from hours where (counts).exceptions = 0 and (counts).resolved = 0),
      (select array_agg(counts) from days where (counts).exceptions = 0 and (counts).resolved = 0),
      (select array_agg(counts) from hour_totals where (counts).exceptions = 0 and (counts).resolved = 0),
      (select array_agg(counts) from day_totals where (counts).exceptions = 0 and (counts).resolved = 0)$a$)
  into emptied_hours, emptied_days, emptied_hour_totals, emptied_day_totals;
  if emptied_hours is not null then
    delete from exceptions.hourly_counts t using unnest(emptied_hours) e
    where (t.tenant_id, t.hour, t.interface_type, t.severity, t.category, t.status)
      = (e.tenant_id, e.hour, e.interface_type, e.severity, e.category, e.status)
      and t.exceptions = 0 and t.resolved = 0;
  end if;
  if emptied_days is not null then
    delete from exceptions.daily_counts t using unnest(emptied_days) e
    where (t.tenant_id, t.day, t.interface_type, t.severity, t.category, t.status)
      = (e.tenant_id, e.day, e.interface_type, e.severity, e.category, e.status)
      and t.exceptions = 0 and t.resolved = 0;
  end if;
  if emptied_hour_totals is not null then
    delete from exceptions.hourly_totals t using unnest(emptied_hour_totals) e
    where (t.tenant_id, t.hour, t.dimension, t.value) = (e.tenant_id, e.hour, e.dimension, e.value)
      and t.exceptions = 0 and t.resolved = 0;
  end if;
  if emptied_day_totals is not null then
    delete from exceptions.daily_totals t using unnest(emptied_day_totals) e
    where (t.tenant_id, t.day, t.dimension, t.value) = (e.tenant_id, e.day, e.dimension, e.value)
      and t.exceptions = 0 and t.resolved = 0;
  end if;
  return null;
end $$;

create trigger count_inserts after insert on exceptions.exceptions
  referencing new table as new_rows for each statement execute function exceptions.count_exceptions();
create trigger count_updates after update on exceptions.exceptions
  referencing old table as old_rows new table as new_rows
  for each statement execute function exceptions.count_exceptions();
create trigger count_deletes after delete on exceptions.exceptions
  referencing old table as old_rows for each statement execute function exceptions.count_exceptions();

-- TRUNCATE fires no delete trigger: the counts go with the rows.
create function exceptions.truncate_counts() returns trigger
language plpgsql as $$
begin
  truncate exceptions.hourly_counts, exceptions.daily_counts, exceptions.hourly_totals, exceptions.daily_totals;
  return null;
end $$;
create trigger count_truncate after truncate on exceptions.exceptions
  for each statement execute function exceptions.truncate_counts();

-- The rows already there, in key order: a summary reads a range of hours, whose rows then share
-- pages (as the triggers' rows do, written as time goes by). The triggers above hold the table's
-- write lock until this migration commits, so no write slips between this count and them.
do $$
begin
  execute exceptions.rollup_statement(
    'select 1 as sign, tenant_id, interface_type, severity, category, status, last_seen, first_seen, resolved_at
     from exceptions.exceptions', $a$,
    hours as (
      insert into exceptions.hourly_counts
      select tenant_id, start, interface_type, severity, category, status, exceptions, resolved, resolve_ms
      from deltas where width = 'hour' order by 1, 2, 3, 4, 5, 6
    ),
    days as (
      insert into exceptions.daily_counts
      select tenant_id, start, interface_type, severity, category, status, exceptions, resolved, resolve_ms
      from deltas where width = 'day' order by 1, 2, 3, 4, 5, 6
    ),
    hour_totals as (
      insert into exceptions.hourly_totals
      select tenant_id, start, dimension, value, exceptions, resolved, resolve_ms
      from totals where width = 'hour' order by 1, 2, 3, 4
    )
    insert into exceptions.daily_totals
    select tenant_id, start, dimension, value, exceptions, resolved, resolve_ms
    from totals where width = 'day' order by 1, 2, 3, 4$a$);
end $$;

-- The summary's oldest open exception, exact without reading its range: the open rows of each
-- day of last_seen in first_seen order, so one probe per day finds the day's oldest of the
-- filter (the counts say which days hold some). The predicate is the summary's open statuses as
-- written there (summary-rollup.ts OPEN_SQL), the day its date_bin to the letter.
create index exceptions_open_by_day on exceptions.exceptions (tenant_id,
  date_bin(interval '1 day', last_seen, timestamptz '2000-01-01Z'), first_seen)
  include (last_seen, interface_type, severity, category, status)
  where status in ('NEW', 'ACKNOWLEDGED', 'RETRY_IN_PROGRESS', 'RETRIED_FAILED');

-- As 0031's tables: each request sees and writes its own tenant's counts only, the owner too.
do $$
declare t text;
begin
  foreach t in array array['hourly_counts', 'daily_counts', 'hourly_totals', 'daily_totals'] loop
    execute format('alter table exceptions.%I enable row level security', t);
    execute format('alter table exceptions.%I force row level security', t);
    execute format($p$create policy tenant_isolation on exceptions.%I
      using (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)
      with check (tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid)$p$, t);
    execute format('grant select, insert, update, delete on exceptions.%I to mercato_app', t);
  end loop;
end $$;
