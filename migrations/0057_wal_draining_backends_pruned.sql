-- A draining backend leaves the list once it holds nothing more of the namespace.
--
-- The trigger of migration 0056 rebuilt `draining_backends` from the row before the update, so no
-- update could take a backend off it: every consumer went on polling a backend that had nothing
-- left, for ever. Now the list an update sets is kept where it only drops entries (the WAL's
-- pruner, src/wal/backends/stream/prune.ts, drops one after closing that backend to writes of the
-- namespace once it found nothing undelivered there); it still gains the backend and fallback the
-- namespace stops naming and loses those it names again, and no update can add any other. Every
-- other update leaves the column as it was, so behaves as before.
create or replace function wal.namespace_draining_backends() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  new.draining_backends := array(
    select distinct b
    from unnest(
      array(select d from unnest(new.draining_backends) d where d = any(old.draining_backends))
        || array[old.backend, old.fallback_backend]::text[]) b
    where b in ('redis-streams', 'nats-jetstream')
      and b is distinct from new.backend and b is distinct from new.fallback_backend
    order by b);
  return new;
end
$$;

-- What the pruner reads on each pass: the few namespaces still draining a backend.
create index namespaces_draining on wal.namespaces (tenant_id, name) where cardinality(draining_backends) > 0;
