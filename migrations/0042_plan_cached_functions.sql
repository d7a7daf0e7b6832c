-- Functions called once per statement run in PL/pgSQL, whose statements keep their plans for the
-- session, instead of in SQL, whose statements are parsed and planned again at every call.
--
-- PostgreSQL (before version 18) plans the body of a `language sql` function that it cannot inline
-- each time an outer statement calls it; only within one run of that statement is the plan kept.
-- A function called once per statement therefore pays its planning every time. Measured on the
-- 2-core VM of bench/README.md, a transaction's outbox insert of two domain events (the same
-- prepared `select wal.insert_fresh_messages($1)`, 40 calls after 20 untimed): 0.75 to 0.8 ms in
-- SQL, 0.2 ms in PL/pgSQL, the same as its INSERT sent on its own as a prepared statement. A
-- checkout makes three such inserts, and every reservation batch, flash-sale admission batch and
-- WAL group commit one.
--
-- The bodies are unchanged, and so are the signatures, owners and grants (create or replace).

-- Domain events' outbox insert (migration 0038).
create or replace function wal.insert_fresh_messages(batch jsonb) returns void
language plpgsql as $$
begin
  insert into wal.messages (id, tenant_id, namespace, message_id, ordering_key, payload, headers,
    request_hash, backend, state, due_at, max_attempts, created_at, delivered_at, targets_done, attempts)
  select x.id, x.tenant_id, x.namespace, x.message_id, x.ordering_key, coalesce(x.payload, 'null'::jsonb),
    x.headers, x.request_hash, x.backend, x.state, x.due_at, x.max_attempts, x.created_at,
    case when x.state = 'delivered' then x.created_at end, x.targets_done, x.attempts
  from wal.message_rows(batch) as x;
end
$$;

-- The test PSP's stored answer of a call, written once per authorize, capture, void or refund
-- (migration 0040).
create or replace function test_psp.answer(p_op uuid, p_result jsonb, p_charge text)
returns jsonb language plpgsql as $$
declare
  stored jsonb;
begin
  update test_psp.operations set result = p_result, charge_id = p_charge where id = p_op
    returning result into stored;
  return stored;
end
$$;

-- The stored answer of a call whose key was claimed before (migration 0040).
create or replace function test_psp.replay(p_merchant uuid, p_key text, p_kind text, p_amount bigint)
returns jsonb language plpgsql stable as $$
declare
  stored jsonb;
begin
  select case when o.kind = p_kind and o.amount is not distinct from p_amount then o.result
    else jsonb_build_object('status', 'error',
      'message', 'idempotency key already used for another request') end
  into stored
  from test_psp.operations o
  where o.merchant_id = p_merchant and o.idempotency_key = p_key;
  return stored;
end
$$;
