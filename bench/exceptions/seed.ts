/**
 * Fills the bench tenant's collector to BENCH_ROWS exceptions (1,000,000) straight in SQL, as a
 * year of captures would leave them, written in the order captures write them (oldest last seen
 * first, so the table and its rollup lie on disk in time order, as a collector's do): 2,000 groups; reasons of bench/exceptions/vocabulary.ts with
 * varying figures; statuses, severities and categories spread; 20,000 customers; last seen over the
 * past 90 days; payloads naming SKUs and warehouses. Then VACUUM (ANALYZE) of the collector's tables, as
 * autovacuum would soon after so many inserts and count updates: this machine's PostgreSQL runs with
 * autovacuum off (its CI configuration), and without it every index-only scan of the reads fetches
 * the heap and the rollup's count tables carry their dead versions. Before it, the counts the seed's
 * statements appended are folded, as the collector's job would have done within seconds.
 */
import { sql } from '../commerce/setup.ts';
import {
  CATEGORIES,
  CUSTOMERS,
  INBOUND,
  REASONS,
  SEVERITIES,
  SKUS,
  STATUSES,
  WAREHOUSES,
} from './vocabulary.ts';

const GROUPS = 2000;
const CHUNK = 100_000;
const list = (values: readonly string[]) =>
  `array[${values.map((v) => `'${v.replace(/'/g, "''")}'`).join(',')}]`;

const vacuum = () =>
  sql(
    `vacuum (analyze) exceptions.exceptions, exceptions.groups, exceptions.audit, exceptions.hourly_counts,
       exceptions.daily_counts, exceptions.hourly_totals, exceptions.daily_totals, exceptions.rollup_dirty,
       exceptions.group_credits`,
  );

/**
 * Folds the counts the seed's statements appended (migration 0034), as the collector's job does
 * within seconds: the reads then meet a steady state, and the job does not fold a million rows'
 * counts in the middle of them.
 */
async function fold(tenantId: string) {
  await sql(
    `select exceptions.fold_counts(), exceptions.fold_group_credits()
     from (select set_config('app.tenant_id', $1, false)) as tenant`,
    [tenantId],
  );
  await sql('delete from exceptions.rollup_dirty where tenant_id = $1', [tenantId]);
}

export async function seedExceptions(
  tenantId: string,
  rows: number,
): Promise<{ seconds: number; rows: number }> {
  const started = performance.now();
  const [have] = await sql<{ n: string }>(
    'select count(*) as n from exceptions.exceptions where tenant_id = $1',
    [tenantId],
  );
  const missing = rows - Number(have!.n);
  if (missing <= 0) {
    await fold(tenantId);
    await vacuum();
    return { seconds: 0, rows: Number(have!.n) };
  }
  await sql(
    `insert into exceptions.groups (id, tenant_id, fingerprint, interface_type, category, normalized_reason, severity,
       exceptions, occurrences, first_seen, last_seen)
     select gen_random_uuid(), $1, 'bench-' || g,
       (${list(INBOUND.map((k) => k.interfaceType))})[1 + g % ${INBOUND.length}],
       (${list(CATEGORIES)})[1 + (g / 5) % ${CATEGORIES.length}],
       lower(replace((${list(REASONS)})[1 + g % ${REASONS.length}], '#', '<n>')),
       (${list(SEVERITIES)})[1 + (g / 3) % ${SEVERITIES.length}],
       0, 0, now() - interval '90 days', now()
     from generate_series(0, ${GROUPS - 1}) g
     on conflict (tenant_id, fingerprint) do nothing`,
    [tenantId],
  );
  for (let from = 0; from < missing; from += CHUNK) {
    const n = Math.min(CHUNK, missing - from);
    await sql(
      `insert into exceptions.exceptions (id, tenant_id, transaction_id, external_id, interface_type, event_type,
         operation, reason, category, severity, status, customer_id, location_code, order_id, amount, currency,
         retryable, source_ref, payload, group_id, occurrences, first_seen, last_seen, created_at, updated_at,
         acknowledged_at, resolved_at, resolution)
       select gen_random_uuid(), $1, 'TX-' || i, 'EXT-' || (i::bigint * 7919 % 10000000), g.interface_type,
         (${list(INBOUND.map((k) => k.type))})[1 + i % ${INBOUND.length}], 'submit',
         replace((${list(REASONS)})[1 + split_part(g.fingerprint, '-', 2)::int % ${REASONS.length}], '#', (1000 + i % 9000)::text),
         g.category, g.severity, s.status, 'CUST-' || (i % ${CUSTOMERS}), 'WH-' || (i % ${WAREHOUSES}),
         case when g.interface_type = 'ORDER' then 'ORD-' || i end,
         case when g.interface_type = 'ORDER' then 1000 + i % 50000 end,
         case when g.interface_type = 'ORDER' then 'EUR' end,
         g.category in ('NETWORK_ERROR', 'TIMEOUT', 'SYSTEM_ERROR'),
         jsonb_build_object('kind', 'source', 'interfaceType', g.interface_type, 'externalId', 'EXT-' || (i::bigint * 7919 % 10000000)),
         jsonb_build_object('sku', 'SKU-' || (i % ${SKUS}), 'warehouse', 'WH-' || (i % ${WAREHOUSES}), 'channel', 'erp'),
         g.id, 1 + i % 3, t.seen - interval '1 hour', t.seen, t.seen - interval '1 hour', t.seen,
         case when s.status <> 'NEW' then t.seen end,
         case when s.status in ('RESOLVED', 'CLOSED') then t.seen + interval '2 hours' end,
         case when s.status in ('RESOLVED', 'CLOSED') then 'fixed' end
       from generate_series($2::int, $3::int) i
       cross join lateral (select now() - interval '90 days' + (i::float8 / $4) * interval '90 days' as seen) t
       cross join lateral (select (${list(STATUSES)})[1 + (i / 7) % ${STATUSES.length}] as status) s
       join exceptions.groups g on g.tenant_id = $1 and g.fingerprint = 'bench-' || (i % ${GROUPS})`,
      [tenantId, from, from + n - 1, missing],
    );
    console.log(`seed: ${from + n} of ${missing} exceptions`);
  }
  await sql(
    `update exceptions.groups g set exceptions = c.n, occurrences = c.o, first_seen = c.f, last_seen = c.l
     from (select group_id, count(*) as n, sum(occurrences) as o, min(first_seen) as f, max(last_seen) as l
           from exceptions.exceptions where tenant_id = $1 group by group_id) c
     where g.id = c.group_id`,
    [tenantId],
  );
  await fold(tenantId);
  await vacuum();
  return { seconds: Math.round((performance.now() - started) / 100) / 10, rows };
}
