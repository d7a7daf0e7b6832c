-- A batch of messages to insert arrives as one JSON array of arrays, each row's values in a fixed
-- order, no longer as an array of objects: jsonb's input sorts and de-duplicates the keys of every
-- object, and for rows of sixteen keys that was most of the parse (a batch of 500 rows: 12 ms as
-- objects, 5 ms as arrays, on a 2-core VM). A row is
--   [s, id, tenant_id, namespace, message_id, ordering_key, payload, headers, request_hash,
--    backend, state, due_at, max_attempts, created_at, targets_done, attempts]
-- (s numbers the submission the row belongs to; targets_done and attempts may be null: '{}', 0).
-- wal.message_rows reads it, in one place, for both functions below; being a STABLE SQL function
-- of one SELECT, PostgreSQL inlines it into the statement that calls it. A batch of objects, as
-- a process of the previous version still sends during a rolling upgrade, is read as before.
create function wal.message_rows(batch jsonb)
returns table (s integer, id uuid, tenant_id uuid, namespace text, message_id text, ordering_key text,
  payload jsonb, headers jsonb, request_hash text, backend text, state text, due_at timestamptz,
  max_attempts integer, created_at timestamptz, targets_done text[], attempts integer)
language sql stable as $$
  select (r->>0)::integer, (r->>1)::uuid, (r->>2)::uuid, r->>3, r->>4, r->>5, r->6, r->7, r->>8,
    r->>9, r->>10, (r->>11)::timestamptz, (r->>12)::integer, (r->>13)::timestamptz,
    case when jsonb_typeof(r->14) = 'array' then array(select jsonb_array_elements_text(r->14))
      else '{}' end,
    coalesce((r->>15)::integer, 0)
  from jsonb_array_elements(batch) as r
  where jsonb_typeof(batch->0) = 'array'
  union all
  select x.s, x.id, x.tenant_id, x.namespace, x.message_id, x.ordering_key, x.payload, x.headers,
    x.request_hash, x.backend, x.state, x.due_at, x.max_attempts, x.created_at,
    coalesce(x.targets_done, '{}'), coalesce(x.attempts, 0)
  from jsonb_to_recordset(case when jsonb_typeof(batch->0) = 'object' then batch else '[]' end)
    as x(s integer, id uuid, tenant_id uuid, namespace text, message_id text, ordering_key text,
      payload jsonb, headers jsonb, request_hash text, backend text, state text, due_at timestamptz,
      max_attempts integer, created_at timestamptz, targets_done text[], attempts integer)
$$;

-- As migration 0033's, reading the rows through wal.message_rows.
create or replace function wal.insert_messages(batch jsonb) returns jsonb
language plpgsql as $$
declare
  fresh uuid[];
  stored jsonb;
begin
  with inserted as (
    insert into wal.messages as m (id, tenant_id, namespace, message_id, ordering_key, payload,
      headers, request_hash, backend, state, due_at, max_attempts, created_at, delivered_at,
      targets_done, attempts)
    select x.id, x.tenant_id, x.namespace, x.message_id, x.ordering_key,
      coalesce(x.payload, 'null'::jsonb), x.headers, x.request_hash, x.backend, x.state, x.due_at,
      x.max_attempts, x.created_at, case when x.state = 'delivered' then x.created_at end,
      x.targets_done, x.attempts
    from wal.message_rows(batch) as x
    on conflict (tenant_id, namespace, message_id) do nothing
    returning m.id
  )
  select coalesce(array_agg(inserted.id), '{}') into fresh from inserted;
  if cardinality(fresh) = jsonb_array_length(batch) then
    return jsonb_build_object('fresh', to_jsonb(fresh));
  end if;
  -- A new statement, a new snapshot: it sees the rows the INSERT waited for and skipped.
  select jsonb_agg(jsonb_build_object('s', x.s, 'sent', x.request_hash, 'id', m.id,
      'tenant_id', m.tenant_id, 'namespace', m.namespace, 'message_id', m.message_id,
      'request_hash', m.request_hash, 'backend', m.backend, 'state', m.state, 'due_at', m.due_at,
      'created_at', m.created_at))
    into stored
  from wal.message_rows(batch) as x
  left join wal.messages m
    on m.tenant_id = x.tenant_id and m.namespace = x.namespace and m.message_id = x.message_id
  where x.id <> all(fresh);
  -- Conflicted, then gone before this read (retention deleted it): the caller retries.
  if exists (select 1 from jsonb_array_elements(stored) e where e->>'id' is null) then
    raise exception 'a message changed during the write; retry' using errcode = '40001';
  end if;
  delete from wal.messages
  where id = any(fresh)
    and id in (
      select x.id from wal.message_rows(batch) as x
      where x.s in (select (e->>'s')::integer from jsonb_array_elements(stored) e
                    where e->>'request_hash' <> e->>'sent'));
  return jsonb_build_object('fresh', to_jsonb(fresh), 'stored', stored);
end
$$;

-- Domain events (the event bus's outbox) carry message ids made for them a moment earlier
-- (UUIDv7): no earlier write can hold one, so their rows need no ON CONFLICT. A plain insert skips
-- the arbiter's probe of the (tenant, namespace, message id) index before each row and the
-- confirmation record after it; an id that did exist would fail the statement with a unique
-- violation, as any broken invariant should.
create function wal.insert_fresh_messages(batch jsonb) returns void
language sql as $$
  insert into wal.messages (id, tenant_id, namespace, message_id, ordering_key, payload, headers,
    request_hash, backend, state, due_at, max_attempts, created_at, delivered_at, targets_done, attempts)
  select x.id, x.tenant_id, x.namespace, x.message_id, x.ordering_key, coalesce(x.payload, 'null'::jsonb),
    x.headers, x.request_hash, x.backend, x.state, x.due_at, x.max_attempts, x.created_at,
    case when x.state = 'delivered' then x.created_at end, x.targets_done, x.attempts
  from wal.message_rows(batch) as x
$$;
