-- The test PSP's calls commit without waiting for their WAL to reach the disk
-- (synchronous_commit off for the call's own transaction; src/payments/providers/test-psp.ts).
--
-- The test PSP stands in for a remote PSP: its latency is MERCATO_TEST_PSP_LATENCY_MS. Each of
-- its calls (one statement, its own transaction, migration 0040) also waited for a flush of
-- PostgreSQL's WAL, about 2.2 ms on the disk of bench/README.md's machine, so a checkout paid two
-- flushes (authorize, capture) that are no part of Mercato. The ledger stays as safe as the
-- saga needs: a call's commit is visible to every session at once and survives any crash of
-- Mercato's processes (PostgreSQL keeps it); and Mercato writes a call's answer in a transaction
-- of its own that commits synchronously, which flushes the WAL in order, this call's commit
-- first, so Mercato never durably holds an answer the PSP lost. A crash of PostgreSQL itself
-- before that may lose the call with Mercato's record of it: the saga then finds its call
-- unanswered and makes it again under the same key, as it does for a call lost on the network.
-- Every call claims its key first (test_psp.claim): the setting is made there.
create or replace function test_psp.claim(p_op uuid, p_merchant uuid, p_key text, p_kind text, p_amount bigint)
returns boolean language plpgsql as $$
declare
  claimed uuid;
begin
  perform set_config('synchronous_commit', 'off', true);
  insert into test_psp.operations (id, merchant_id, idempotency_key, kind, amount, result)
  values (p_op, p_merchant, p_key, p_kind, p_amount, '{}')
  on conflict on constraint operations_key do nothing
  returning id into claimed;
  return claimed is not null;
end
$$;
