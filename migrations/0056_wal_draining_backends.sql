-- A namespace moved off a stream backend keeps being served there until what it left is delivered.
--
-- `draining_backends` lists the stream backends (redis-streams, nats-jetstream) the namespace
-- named before, as its backend or its fallback, and names no longer: their consumers go on
-- delivering what those hold for it, its messages are looked up and deleted there too, and no new
-- write goes there. The postgres backend needs no entry: its lease never asks a message's
-- namespace which backend it names. Kept by a trigger on every update, so every path that moves a
-- namespace (the API, the system namespaces' move to the configured backend) records it; a
-- backend named again leaves the list.
alter table wal.namespaces add column draining_backends text[] not null default '{}'
  constraint namespaces_draining_backends_check
  check (draining_backends <@ array['redis-streams', 'nats-jetstream']::text[]);

create function wal.namespace_draining_backends() returns trigger
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  new.draining_backends := array(
    select distinct b
    from unnest(old.draining_backends || array[old.backend, old.fallback_backend]::text[]) b
    where b in ('redis-streams', 'nats-jetstream')
      and b is distinct from new.backend and b is distinct from new.fallback_backend
    order by b);
  return new;
end
$$;

create trigger namespaces_draining_backends before update on wal.namespaces
  for each row execute function wal.namespace_draining_backends();
