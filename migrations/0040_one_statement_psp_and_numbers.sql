-- The test PSP's four calls, and a shop's order numbers, each become ONE statement: one round trip
-- to PostgreSQL where they were three to six.
--
-- A checkout calls the PSP twice (authorize, capture). Each call was a transaction of its own run
-- from the server: BEGIN, claim the operation, the effect (one or two statements), the result,
-- COMMIT. On the 2-core VM of bench/README.md a round trip costs about 0.1 ms of CPU on each side
-- whatever the statement, and a checkout's throughput followed its round trips almost linearly. A
-- real PSP is one HTTPS request per call; so is this one now (a function call, run in the
-- statement's own transaction), with the same ledger and the same rules as before:
-- - every call first claims its (merchant, idempotency key) in test_psp.operations; the same key
--   again waits for the first call's commit, then answers its stored result (test_psp.replay), or
--   an error when the key was used for another kind of call or another amount;
-- - the effect and its result are written in the same transaction as the claim.

-- The stored answer of a call whose key was claimed before: its result when the call is the same
-- (kind and amount), else an error. Null when no call holds the key (it cannot be: the caller's
-- claim conflicted with one).
create function test_psp.replay(p_merchant uuid, p_key text, p_kind text, p_amount bigint)
returns jsonb language sql stable as $$
  select case when o.kind = p_kind and o.amount is not distinct from p_amount then o.result
    else jsonb_build_object('status', 'error',
      'message', 'idempotency key already used for another request') end
  from test_psp.operations o
  where o.merchant_id = p_merchant and o.idempotency_key = p_key
$$;

-- Claims (merchant, key) for a call: true when this call is the first with the key.
create function test_psp.claim(p_op uuid, p_merchant uuid, p_key text, p_kind text, p_amount bigint)
returns boolean language plpgsql as $$
declare
  claimed uuid;
begin
  insert into test_psp.operations (id, merchant_id, idempotency_key, kind, amount, result)
  values (p_op, p_merchant, p_key, p_kind, p_amount, '{}')
  on conflict on constraint operations_key do nothing
  returning id into claimed;
  return claimed is not null;
end
$$;

-- Records the result of a claimed call.
create function test_psp.answer(p_op uuid, p_result jsonb, p_charge text)
returns jsonb language sql as $$
  update test_psp.operations set result = p_result, charge_id = p_charge where id = p_op
  returning result
$$;

-- Authorize: the server worked out the charge from the token (p_status, p_decline, p_result), or
-- refused the input (p_charge null, p_result the error). A void by this authorization's key that
-- came first left a 'voided' charge under the key: nothing may be held now.
create function test_psp.authorize(p_op uuid, p_merchant uuid, p_key text, p_amount bigint,
  p_charge text, p_currency text, p_token text, p_status text, p_decline text, p_result jsonb)
returns jsonb language plpgsql as $$
declare
  charge text;
begin
  if not test_psp.claim(p_op, p_merchant, p_key, 'authorize', p_amount) then
    return test_psp.replay(p_merchant, p_key, 'authorize', p_amount);
  end if;
  if p_charge is null then
    return test_psp.answer(p_op, p_result, null);
  end if;
  insert into test_psp.charges (id, merchant_id, idempotency_key, amount, currency, token, status,
    decline_code)
  values (p_charge, p_merchant, p_key, p_amount, p_currency, p_token, p_status, p_decline)
  on conflict on constraint charges_key do nothing
  returning id into charge;
  if charge is null then
    return test_psp.answer(p_op,
      jsonb_build_object('status', 'error', 'message', 'authorization was voided'), null);
  end if;
  return test_psp.answer(p_op, p_result, charge);
end
$$;

-- Capture: the authorized amount in full, once.
create function test_psp.capture(p_op uuid, p_merchant uuid, p_key text, p_amount bigint,
  p_charge text)
returns jsonb language plpgsql as $$
declare
  c test_psp.charges;
begin
  if not test_psp.claim(p_op, p_merchant, p_key, 'capture', p_amount) then
    return test_psp.replay(p_merchant, p_key, 'capture', p_amount);
  end if;
  select * into c from test_psp.charges
  where merchant_id = p_merchant and id = p_charge for update;
  if not found then
    return test_psp.answer(p_op, jsonb_build_object('status', 'error', 'message', 'no such charge'), null);
  end if;
  if c.status <> 'authorized' then
    return test_psp.answer(p_op,
      jsonb_build_object('status', 'error', 'message', 'charge is ' || c.status), c.id);
  end if;
  if p_amount <> c.amount then
    return test_psp.answer(p_op,
      jsonb_build_object('status', 'error', 'message', 'capture the authorized amount in full'), c.id);
  end if;
  update test_psp.charges set status = 'captured', captured_amount = p_amount, updated_at = now()
  where id = c.id;
  return test_psp.answer(p_op, jsonb_build_object('status', 'captured'), c.id);
end
$$;

-- Void the authorization made under p_auth_key. Nothing authorized under it yet: a 'voided' charge
-- (p_mark, no amount) is left under the key, so an authorization still in flight is refused.
create function test_psp.void(p_op uuid, p_merchant uuid, p_key text, p_auth_key text, p_mark text)
returns jsonb language plpgsql as $$
declare
  c test_psp.charges;
begin
  if not test_psp.claim(p_op, p_merchant, p_key, 'void', null) then
    return test_psp.replay(p_merchant, p_key, 'void', null);
  end if;
  select * into c from test_psp.charges
  where merchant_id = p_merchant and idempotency_key = p_auth_key for update;
  if not found then
    insert into test_psp.charges (id, merchant_id, idempotency_key, amount, status)
    values (p_mark, p_merchant, p_auth_key, 0, 'voided')
    on conflict on constraint charges_key do nothing;
    -- A new statement, a new snapshot: an authorization that won the key meanwhile is seen.
    select * into c from test_psp.charges
    where merchant_id = p_merchant and idempotency_key = p_auth_key for update;
    if not found then
      raise exception 'test PSP: the charge of a void vanished';
    end if;
  end if;
  if c.status = 'captured' then
    return test_psp.answer(p_op,
      jsonb_build_object('status', 'error', 'message', 'charge is captured: refund it'), c.id);
  end if;
  if c.status in ('pending', 'authorized') then
    update test_psp.charges set status = 'voided', updated_at = now() where id = c.id;
  end if;
  return test_psp.answer(p_op, jsonb_build_object('status', 'voided'), c.id);
end
$$;

-- Refund part or all of what a charge captured and has not refunded yet.
create function test_psp.refund(p_op uuid, p_merchant uuid, p_key text, p_amount bigint,
  p_charge text, p_refund text)
returns jsonb language plpgsql as $$
declare
  c test_psp.charges;
  remaining bigint;
begin
  if not test_psp.claim(p_op, p_merchant, p_key, 'refund', p_amount) then
    return test_psp.replay(p_merchant, p_key, 'refund', p_amount);
  end if;
  select * into c from test_psp.charges
  where merchant_id = p_merchant and id = p_charge for update;
  if not found then
    return test_psp.answer(p_op, jsonb_build_object('status', 'error', 'message', 'no such charge'), null);
  end if;
  remaining := c.captured_amount - c.refunded_amount;
  if c.status <> 'captured' or p_amount <= 0 or p_amount > remaining then
    return test_psp.answer(p_op, jsonb_build_object('status', 'error', 'message',
      format('cannot refund %s of a %s charge (%s left)', p_amount, c.status, remaining)), c.id);
  end if;
  update test_psp.charges set refunded_amount = refunded_amount + p_amount, updated_at = now()
  where id = c.id;
  return test_psp.answer(p_op, jsonb_build_object('status', 'refunded', 'refundId', p_refund), c.id);
end
$$;

-- A shop's next `p_count` order numbers (the counter starts at p_first), in one statement: it
-- sets the tenant for row-level security itself, as withTenant does for a transaction, so it
-- runs without a transaction of its own (it was BEGIN with the settings, the upsert, COMMIT).
-- Security definer, owned by the owner, callable by the request role: it touches only the
-- counter of the tenant it is given, which the server passes (never a request's text).
create function orders.take_numbers(p_tenant uuid, p_count integer, p_first bigint)
returns bigint language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  last bigint;
begin
  if p_count < 1 then
    raise exception 'take_numbers: count must be at least 1' using errcode = '22023';
  end if;
  perform set_config('app.tenant_id', p_tenant::text, true);
  insert into orders.counters as c (tenant_id, last_number)
  values (p_tenant, p_first + p_count - 1)
  on conflict (tenant_id) do update set last_number = c.last_number + p_count
  returning c.last_number into last;
  return last;
end
$$;
revoke all on function orders.take_numbers(uuid, integer, bigint) from public;
