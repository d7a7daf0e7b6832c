-- Retention's index of finished messages becomes a BRIN index: a summary of each range of 128
-- heap pages (the earliest and latest finish on it) instead of a b-tree entry per message.
--
-- Every message written goes into it (most are stored finished: domain events nobody subscribes
-- to, messages delivered inline, replies), so its b-tree was one of the three entries each row
-- paid for, on every write of every tenant. Its one reader is the hourly purge, which wants the
-- rows finished before a bound and deletes them: rows land in the heap roughly in the order they
-- finish (a message delivered later is a new row version, written where there is room), which a
-- BRIN summary serves with a few ranges to read for nearly nothing per insert.
--
-- A range is summarized once it is full (autosummarize asks autovacuum to), and the purge
-- summarizes whatever is left before it reads (retention.ts), so without autovacuum too it reads
-- only the ranges that may hold rows to delete.
drop index wal.messages_retention;
create index messages_retention on wal.messages using brin (coalesce(delivered_at, dead_at))
  with (autosummarize = on)
  where state in ('delivered', 'dead');
