-- The outbox relay's record of rows it sent to a stream backend without that backend's answer.
--
-- The relay (src/wal/backends/stream/relay.ts) appends outbox rows to their stream backend. An
-- append that got no answer (BackendTimeoutError: a NATS publish whose ack was lost, a Redis that
-- took the script and fell silent) may have been stored there. Its rows waited for the same
-- backend, but only for that pass: a later pass that found the backend down (connection refused)
-- handed them to the namespace's fallback, and both backends delivered them. `sent_to` names the
-- backend such a row may be stored on; while it is set, the row goes to no other backend (not the
-- fallback, not the namespace's new backend) until that one confirms it (the row is relayed and
-- deleted) or says it does not hold it (refused as retired, or a messageId it holds with another
-- body). The relay sets it in a transaction committed before it sends the rows, and in the pass
-- whose append got no answer, so neither a restart nor a kill -9 between passes forgets it.
alter table wal.messages add column sent_to text;
alter table wal.messages add constraint messages_sent_to
  check (sent_to in ('redis-streams', 'nats-jetstream')) not valid;

-- A namespace's backend is not pruned while rows it may hold wait marked for it
-- (src/wal/backends/stream/prune.ts): the few marked rows, found by namespace.
create index messages_sent_to on wal.messages (tenant_id, namespace, sent_to) where sent_to is not null;
