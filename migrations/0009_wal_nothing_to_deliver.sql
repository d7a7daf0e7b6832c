-- A message written to a namespace with no enabled target is stored delivered (nothing to
-- deliver), and a stream backend's dead letters land here as dead: neither wakes anybody. Only
-- rows waiting for delivery notify: postgres rows their consumers, stream-backend rows the relay.
create or replace function wal.notify_messages_ready() returns trigger language plpgsql as $$
begin
  if exists (select 1 from inserted where backend = 'postgres' and state in ('pending', 'scheduled')) then
    perform pg_notify('mercato_wal_ready', '');
  end if;
  if exists (select 1 from inserted where backend <> 'postgres' and state in ('pending', 'scheduled')) then
    perform pg_notify('mercato_wal_relay', '');
  end if;
  return null;
end
$$;
