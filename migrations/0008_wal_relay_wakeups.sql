-- The outbox relay's query: rows that wait in wal.messages for a stream backend (redis-streams,
-- nats-jetstream). Without this index it read the whole queue on every wake-up; postgres-backend
-- rows never enter it, so it holds only rows in transit.
create index messages_relay on wal.messages (id)
  where backend <> 'postgres' and state in ('pending', 'scheduled');

-- Each insert wakes only who has work: mercato_wal_ready the postgres backend's consumers when
-- it inserted postgres rows, mercato_wal_relay the relay when it inserted rows for a stream
-- backend (one notification per channel per transaction, as before).
create or replace function wal.notify_messages_ready() returns trigger language plpgsql as $$
begin
  if exists (select 1 from inserted where backend = 'postgres') then
    perform pg_notify('mercato_wal_ready', '');
  end if;
  if exists (select 1 from inserted where backend <> 'postgres') then
    perform pg_notify('mercato_wal_relay', '');
  end if;
  return null;
end
$$;
drop trigger messages_ready on wal.messages;
create trigger messages_ready after insert on wal.messages
  referencing new table as inserted
  for each statement execute function wal.notify_messages_ready();
