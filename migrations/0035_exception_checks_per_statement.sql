-- The foreign keys of exceptions.exceptions (tenant, group) and exceptions.audit (tenant,
-- exception) looked up and row-locked their target once per row: four lookups per captured
-- exception, every capture of a tenant locking the same tenant and group rows (issue 13: capture
-- at least 5,000 a second). As migration 0011 did for wal.messages, the same guarantees now hold
-- per statement:
-- - an INSERT (or an UPDATE, which may move an exception to another group) checks once that every
--   tenant, group and exception its rows name exists, and is of the row's own tenant (which the
--   foreign keys did not check), and locks them FOR KEY SHARE as the foreign keys did, so a delete
--   of one waits for the writer's commit and one after it fails (23503);
-- - deleting exceptions deletes their audit (the cascade), and deleting a group that exceptions
--   are in fails (23503).
-- A tenant is never deleted (suspended instead); one that has exceptions has groups, whose
-- foreign key still refuses its deletion.
-- The functions run as their owner (the locks need more than the request role's SELECT), which
-- the tables' policies may not restrict (a superuser's are not): they compare tenants themselves.
-- Each looks its keys up as one array (= any): an index scan, where a join with the transition
-- table (of unknown size to the planner) was planned as a scan of the whole table.
alter table exceptions.exceptions drop constraint exceptions_tenant_id_fkey,
  drop constraint exceptions_group_id_fkey;
alter table exceptions.audit drop constraint audit_tenant_id_fkey,
  drop constraint audit_exception_id_fkey;

-- The check of a statement's new rows: their tenants exist, and each row's column TG_ARGV[1]
-- names a row of exceptions.<TG_ARGV[0]> of the row's own tenant; all locked FOR KEY SHARE.
create function exceptions.check_refs() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  named integer;
  held integer;
begin
  select count(*) into named from (select distinct tenant_id from new_rows) n;
  select count(*) into held from (
    select 1 from identity.tenants t where t.id = any (array(select distinct tenant_id from new_rows)) for key share of t
  ) locked;
  if held < named then
    raise exception 'exceptions.% names a tenant that does not exist', tg_table_name using errcode = '23503';
  end if;
  execute format($q$
    select (select count(*) from (select distinct %1$I, tenant_id from new_rows) n),
      (select count(*) from (
        select 1 from exceptions.%2$I r
        join (select distinct %1$I, tenant_id from new_rows) n on n.%1$I = r.id and n.tenant_id = r.tenant_id
        where r.id = any (array(select distinct %1$I from new_rows))
        for key share of r) locked)$q$, tg_argv[1], tg_argv[0])
  into named, held;
  if held < named then
    raise exception 'exceptions.% names a row of exceptions.% that does not exist', tg_table_name, tg_argv[0]
      using errcode = '23503';
  end if;
  return null;
end
$$;
create trigger check_inserted_refs after insert on exceptions.exceptions
  referencing new table as new_rows for each statement execute function exceptions.check_refs('groups', 'group_id');
create trigger check_updated_refs after update on exceptions.exceptions
  referencing new table as new_rows for each statement execute function exceptions.check_refs('groups', 'group_id');
create trigger check_inserted_refs after insert on exceptions.audit
  referencing new table as new_rows
  for each statement execute function exceptions.check_refs('exceptions', 'exception_id');

create function exceptions.exceptions_deleted() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  delete from exceptions.audit a where a.exception_id = any (array(select id from old_rows));
  return null;
end
$$;
create trigger delete_audit after delete on exceptions.exceptions
  referencing old table as old_rows for each statement execute function exceptions.exceptions_deleted();

create function exceptions.groups_deleted() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  if exists (select 1 from exceptions.exceptions e where e.group_id = any (array(select id from old_rows))) then
    raise exception 'a group that exceptions are in cannot be deleted' using errcode = '23503';
  end if;
  return null;
end
$$;
create trigger groups_deleted after delete on exceptions.groups
  referencing old table as old_rows for each statement execute function exceptions.groups_deleted();
