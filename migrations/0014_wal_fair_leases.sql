-- Fair delivery: the postgres backend's consumer leases each namespace's due messages up to that
-- namespace's own window (its concurrency, and its tenant's share of the consumer), so a slow
-- namespace's backlog never takes the lease slots another namespace needs. Each lease walks this
-- index once per namespace, in due order, instead of walking every tenant's backlog in one line.
create index messages_due_by_namespace on wal.messages (tenant_id, namespace, due_at, id)
  where backend = 'postgres' and state in ('scheduled', 'pending', 'retrying');
