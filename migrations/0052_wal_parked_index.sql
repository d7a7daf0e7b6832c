-- mercato:no-transaction
-- The parked messages (0051), for the lag metric: they wait, though their due_at lies ahead.
-- Built concurrently, outside a transaction (DEVELOPERS.md, "Migrations"): wal.messages takes
-- writes all the time. Each statement may run again after a failure or a crash: an INVALID index a
-- failed build left is dropped first.
drop index concurrently if exists wal.messages_parked;
-- mercato:split
create index concurrently messages_parked on wal.messages (parked_due_at) where parked_due_at is not null;
