-- Messages waiting behind an earlier message of their ordering key are set aside ("parked"), so
-- the postgres consumer's lease stops reading them again on every lease (src/wal/backends/postgres/
-- lease-ctes.ts). Before, each lease walked every due message of a namespace in order and skipped
-- the ones behind their key: tens of thousands waiting behind a message whose target was down
-- made every lease of that consumer slow, for every tenant's namespaces.
--
-- A parked message keeps the time it fell due in parked_due_at; due_at becomes the time its key's
-- first message may next change (its retry or its lease expiry, at most 15 minutes ahead), so it
-- leaves the due range until then. When that first message is delivered or dead, the outcome's
-- statement gives the next message of the key its due time back (wal.unpark_next); if nothing
-- does, the message falls due again by itself and the lease looks at it again.
--
-- The index of parked messages follows in 0052, built concurrently.
alter table wal.messages add column parked_due_at timestamptz;

-- The next undelivered message of the key after `p_after`, given its due time back when it was
-- parked. VOLATILE: its query takes a snapshot of its own, so called from the statement that
-- recorded `p_after`'s outcome (after that row was updated and locked) it sees every park that
-- committed before, and no park can commit after (a park holds the key's first message FOR SHARE).
create or replace function wal.unpark_next(p_tenant uuid, p_namespace text, p_key text, p_after uuid)
returns integer language plpgsql volatile as $$
declare
  n integer;
begin
  update wal.messages m
  set due_at = m.parked_due_at, parked_due_at = null
  where m.id = (
      select x.id from wal.messages x
      where x.tenant_id = p_tenant and x.namespace = p_namespace and x.ordering_key = p_key
        and x.id > p_after
        and x.state not in ('delivered', 'dead')
      order by x.id
      limit 1)
    and m.parked_due_at is not null;
  get diagnostics n = row_count;
  return n;
end
$$;
