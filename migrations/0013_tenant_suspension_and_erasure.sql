-- Suspended tenants and erased users (issue 9).
--
-- A user can be erased: the row stays (audit and foreign keys keep pointing at it), its personal
-- data is blanked and its status is 'erased', which signs nobody in.
alter table identity.users drop constraint users_status_check;
alter table identity.users add constraint users_status_check
  check (status in ('active', 'disabled', 'erased'));

-- The platform tenant holds the platform admins: suspending it would lock the operator out.
alter table identity.tenants add constraint tenants_platform_stays_active
  check (slug <> 'platform' or status = 'active');

-- A suspended tenant's WAL messages wait: the lease skips namespaces whose `paused` is set.
-- `paused` is derived from the tenant's status on every insert and update of a namespace (so no
-- UPDATE of the namespace can clear it), and every namespace of a tenant is updated when its
-- status changes (which also announces each one on mercato_wal_namespaces, so stream consumers
-- reload and stop or resume serving it).
alter table wal.namespaces add column paused boolean not null default false;

create function wal.namespace_paused() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  new.paused := coalesce((select t.status = 'suspended' from identity.tenants t where t.id = new.tenant_id), false);
  return new;
end
$$;

create trigger namespaces_paused before insert or update on wal.namespaces
  for each row execute function wal.namespace_paused();

-- Each process caches which tenants are suspended (src/identity/tenants/tenant-status-cache.ts)
-- and hears every change here: the payload is '<tenant id>:<status>'.
create function identity.tenant_status_changed() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
begin
  update wal.namespaces set paused = (new.status = 'suspended') where tenant_id = new.id;
  perform pg_notify('mercato_identity_tenants', new.id::text || ':' || new.status);
  -- Resumed: its waiting messages are due now; wake the consumers and the relay.
  if new.status = 'active' then
    perform pg_notify('mercato_wal_ready', '');
  end if;
  return null;
end
$$;

create trigger tenants_status_changed after update of status on identity.tenants
  for each row when (old.status is distinct from new.status)
  execute function identity.tenant_status_changed();
