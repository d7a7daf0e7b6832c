-- WAL audit entries written before HTTP target credentials were sealed (6dfe34c) keep receivers'
-- credential header values in clear (`Authorization: Bearer …`) in their namespace settings:
-- details.after.targets (namespace.created), details.before.targets (namespace.deleted),
-- details.changes.targets.from / .to (namespace.updated). This rewrites them into the masked form
-- the code writes now (src/wal/namespaces/masks.ts): a credential header's value becomes `…` and
-- its last 4 characters (`…` alone under 16 characters), a target's `secret` not already masked
-- becomes `whsec_…` and its last 4 characters. A value already masked stays as it is, so running
-- this again changes nothing. Entries of other kinds are untouched.
--
-- Credential header names: the case-insensitive pattern below is isSensitiveHeader's
-- (src/wal/namespaces/sealed-targets.ts); audit-masks-migration.test.ts checks they agree.
create function wal.audit_masked_targets(targets jsonb) returns jsonb language sql immutable as $$
  select case when jsonb_typeof(targets) <> 'array' then targets else (
    select coalesce(jsonb_agg(case
      when jsonb_typeof(t) <> 'object' or t->>'type' is distinct from 'http' then t
      else t
        || case when jsonb_typeof(t->'secret') = 'string' and left(t->>'secret', 7) <> 'whsec_…'
             then jsonb_build_object('secret', 'whsec_…' || right(t->>'secret', 4))
             else '{}'::jsonb end
        || case when jsonb_typeof(t->'headers') = 'object' then jsonb_build_object('headers', (
             select coalesce(jsonb_object_agg(h.key, case
               when h.key ~* 'auth|cookie|token|key|secret|passw|pwd|credential|session|signature'
                 and jsonb_typeof(h.value) = 'string'
                 and not (h.value #>> '{}' = '…' or (length(h.value #>> '{}') = 5 and left(h.value #>> '{}', 1) = '…'))
               then to_jsonb(case when length(h.value #>> '{}') >= 16 then '…' || right(h.value #>> '{}', 4) else '…' end)
               else h.value end), '{}'::jsonb)
             from jsonb_each(t->'headers') as h))
           else '{}'::jsonb end
      end order by ord), '[]'::jsonb)
    from jsonb_array_elements(targets) with ordinality as x(t, ord)) end
$$;

update wal.audit_log set details = jsonb_set(details, '{after,targets}', wal.audit_masked_targets(details #> '{after,targets}'))
  where action = 'namespace.created' and details #> '{after,targets}' is not null
    and wal.audit_masked_targets(details #> '{after,targets}') <> details #> '{after,targets}';
update wal.audit_log set details = jsonb_set(details, '{before,targets}', wal.audit_masked_targets(details #> '{before,targets}'))
  where action = 'namespace.deleted' and details #> '{before,targets}' is not null
    and wal.audit_masked_targets(details #> '{before,targets}') <> details #> '{before,targets}';
update wal.audit_log set details = jsonb_set(details, '{changes,targets,from}', wal.audit_masked_targets(details #> '{changes,targets,from}'))
  where action = 'namespace.updated' and details #> '{changes,targets,from}' is not null
    and wal.audit_masked_targets(details #> '{changes,targets,from}') <> details #> '{changes,targets,from}';
update wal.audit_log set details = jsonb_set(details, '{changes,targets,to}', wal.audit_masked_targets(details #> '{changes,targets,to}'))
  where action = 'namespace.updated' and details #> '{changes,targets,to}' is not null
    and wal.audit_masked_targets(details #> '{changes,targets,to}') <> details #> '{changes,targets,to}';

drop function wal.audit_masked_targets(jsonb);
