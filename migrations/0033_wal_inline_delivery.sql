-- Inline delivery (src/wal/write/inline-delivery.ts): a write to a namespace whose internal
-- target runs in the writer's transaction (the exception collector's capture of the tenant's
-- interface-exceptions) stores its messages with that target already done: `targets_done` and
-- `attempts` (1: the inline attempt) may now come with each row of the batch; without them a row
-- is stored as before ('{}' and 0). Otherwise wal.insert_messages is migration 0010's.
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
      coalesce(x.targets_done, '{}'), coalesce(x.attempts, 0)
    from jsonb_to_recordset(batch) as x(id uuid, tenant_id uuid, namespace text, message_id text,
      ordering_key text, payload jsonb, headers jsonb, request_hash text, backend text, state text,
      due_at timestamptz, max_attempts integer, created_at timestamptz, targets_done text[],
      attempts integer)
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
  from jsonb_to_recordset(batch) as x(s integer, id uuid, tenant_id uuid, namespace text,
    message_id text, request_hash text)
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
      select x.id from jsonb_to_recordset(batch) as x(s integer, id uuid)
      where x.s in (select (e->>'s')::integer from jsonb_array_elements(stored) e
                    where e->>'request_hash' <> e->>'sent'));
  return jsonb_build_object('fresh', to_jsonb(fresh), 'stored', stored);
end
$$;
