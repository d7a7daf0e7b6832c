-- Domain events (the event bus's outbox) carry message ids made for them a moment earlier
-- (UUIDv7): no earlier write can hold one, so their rows need no ON CONFLICT. A plain insert skips
-- the arbiter's probe of the (tenant, namespace, message id) index before each row and the
-- confirmation record after it; an id that did exist would fail the statement with a unique
-- violation, as any broken invariant should. The columns are those of wal.insert_messages (0033).
create function wal.insert_fresh_messages(batch jsonb) returns void
language sql as $$
  insert into wal.messages (id, tenant_id, namespace, message_id, ordering_key, payload, headers,
    request_hash, backend, state, due_at, max_attempts, created_at, delivered_at, targets_done, attempts)
  select x.id, x.tenant_id, x.namespace, x.message_id, x.ordering_key, coalesce(x.payload, 'null'::jsonb),
    x.headers, x.request_hash, x.backend, x.state, x.due_at, x.max_attempts, x.created_at,
    case when x.state = 'delivered' then x.created_at end, coalesce(x.targets_done, '{}'),
    coalesce(x.attempts, 0)
  from jsonb_to_recordset(batch) as x(id uuid, tenant_id uuid, namespace text, message_id text,
    ordering_key text, payload jsonb, headers jsonb, request_hash text, backend text, state text,
    due_at timestamptz, max_attempts integer, created_at timestamptz, targets_done text[],
    attempts integer)
$$;
