-- Domain events: every tenant has the system namespaces its modules publish to (product-events,
-- inventory-events, order-events, payment-events, notification-events; SYSTEM_TOPICS in
-- src/platform/events). `system` marks them: the tenant cannot delete, disable or rename them,
-- nor change their backend (src/wal/namespaces/system-namespaces.ts), and they do not count
-- toward MERCATO_WAL_MAX_NAMESPACES.
alter table wal.namespaces add column system boolean not null default false;

-- Every tenant that exists now gets them (the platform tenant included). New tenants get them in
-- their creation transaction, and the WAL inserts any missing one at start (with the backend
-- MERCATO_EVENTS_BACKEND names; these start on postgres and the WAL moves them at start when the
-- setting says otherwise). Events may carry a product with its 100 variants: 1 MiB a message.
-- A namespace a tenant had already created under one of these names becomes the system one,
-- keeping its targets and retry policy; what could make a module's publish fail (disabled, a
-- payload schema, a smaller size limit) is reset.
insert into wal.namespaces (tenant_id, name, system, max_payload_bytes)
select t.id, topic.name, true, 1048576
from identity.tenants t
cross join (values ('product-events'), ('inventory-events'), ('order-events'),
                   ('payment-events'), ('notification-events')) as topic (name)
on conflict (tenant_id, name) do update
  set system = true, enabled = true, payload_schema = null,
      max_payload_bytes = greatest(wal.namespaces.max_payload_bytes, 1048576), updated_at = now();
