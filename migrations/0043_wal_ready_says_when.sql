-- NOTIFY mercato_wal_ready says when: its payload is the milliseconds until the earliest message
-- the statement wrote falls due (0 when one is due now). A consumer leases at once for a message
-- due now, and arms a timer for one due later (src/wal/delivery/ready-hints.ts) instead of
-- leasing nothing: each checkout (a flash sale's paid orders included) schedules its watchdog
-- 11 s ahead, and every such commit woke every process's consumer for a lease that found
-- nothing and a look at the next due time (four round trips, with BEGIN and COMMIT).
--
-- The time is counted from the insert (clock_timestamp()), not from the transaction's start, so
-- the consumer's timer fires at the due time or before it, never after. An empty payload (the
-- other notifiers: requeue, relay, inline deliveries that failed) still means "look now".
create or replace function wal.notify_messages_ready() returns trigger language plpgsql as $$
declare
  due_in_ms bigint;
begin
  select floor(extract(epoch from (min(due_at) - clock_timestamp())) * 1000)::bigint into due_in_ms
  from inserted where backend = 'postgres' and state in ('pending', 'scheduled');
  if due_in_ms is not null then
    perform pg_notify('mercato_wal_ready', greatest(due_in_ms, 0)::text);
  end if;
  if exists (select 1 from inserted where backend <> 'postgres' and state in ('pending', 'scheduled')) then
    perform pg_notify('mercato_wal_relay', '');
  end if;
  return null;
end
$$;
