import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { WalTables } from '../../tables.ts';

type Db = Kysely<WalTables>;

/**
 * Milliseconds until the queue next needs a look (by the database's clock; 0 or less: now): the
 * earliest due time of a waiting message or lease expiry of a delivering one after `since` (the
 * time of the last lease, so a row that fell due since is not missed); undefined when nothing
 * waits. Rows due by `since` and not leased are held by another consumer or wait behind their
 * key, whose completion loops that consumer again. One read-only statement, run without a
 * transaction (one round trip: it reads one snapshot all the same); a second one only when the
 * first 100 waiting messages are all of closed namespaces (nextWakeFallbackQuery), from the same
 * time on.
 */
export async function nextWakeInMs(db: Db, since?: Date): Promise<number | undefined> {
  const first = (await nextWakeQuery(since).execute(db)).rows[0];
  let ms = asMs(first?.ms);
  if (first?.crowded) {
    const open = asMs((await nextWakeFallbackQuery(first.after).execute(db)).rows[0]?.ms);
    if (open !== undefined && (ms === undefined || open < ms)) ms = open;
  }
  return ms;
}

const asMs = (ms: number | string | null | undefined) =>
  ms === null || ms === undefined ? undefined : Number(ms);

/**
 * nextWakeInMs's statement: `ms` until the earliest of an open namespace among the first 100
 * waiting messages or the earliest lease expiry, and `crowded` when those 100 are all of closed
 * namespaces (or other backends), when the fallback must look further, from `after` (the time
 * looked from, as text: a Date would drop its microseconds).
 */
export function nextWakeQuery(since?: Date) {
  const after = since ? sql`${since.toISOString()}::timestamptz` : sql`now()`;
  return sql<{ ms: number | string | null; crowded: boolean; after: string }>`
      select (extract(epoch from least(
        -- The earliest of an open namespace among the first 100 waiting (messages_due, walked in
        -- order: the backend is checked after the walk, so the planner cannot read the whole of
        -- messages_due_by_namespace and sort it instead). When all 100 are of closed namespaces
        -- (or other backends), nextWakeFallbackQuery looks at the open ones: a disabled or paused
        -- namespace's thousands of delayed messages are never all read. In a statement of its
        -- own, run only then: planning it on every look cost about half a millisecond more.
        f.earliest,
        (select min(lease_expires_at) from wal.messages where state = 'delivering' and lease_expires_at >= ${after})
      ) - now()) * 1000)::double precision as ms,
      f.earliest is null and f.walked >= 100 as crowded,
      (${after})::text as after
      from (
        select min(x.due_at) filter (where n.name is not null and x.backend = 'postgres') as earliest,
          count(*) as walked
        from (
            select m.due_at, m.tenant_id, m.namespace, m.backend from wal.messages m
            where m.state in ('pending', 'scheduled', 'retrying') and m.due_at > ${after}
            order by m.due_at, m.id
            limit 100) x
          left join wal.namespaces n on n.tenant_id = x.tenant_id and n.name = x.namespace
            and n.enabled and not n.paused) f`;
}

/**
 * The most namespaces holding waiting messages nextWakeFallbackQuery looks at one by one; when
 * that many or more hold some, it probes every open namespace instead.
 */
export const WAITING_NAMESPACES_WALKED = 1000;

/**
 * Milliseconds until the earliest waiting message of an open namespace due after `after` (text
 * of a timestamptz; now when absent), or null: what nextWakeInMs reads when the first 100
 * waiting messages are all of closed namespaces, which it had skipped.
 *
 * When fewer than WAITING_NAMESPACES_WALKED namespaces hold waiting messages (an idle
 * deployment's few), it looks at those only, found as the lease finds them (waiting_ns), not at
 * every open namespace: 5,000 empty open namespaces made each idle look 105 ms, now 1.4 to
 * 1.9 ms (../../README.md, Semantics). When more hold some, it probes each open namespace, as before: one
 * recursive step costs about three probes, so walking them all would cost more. Either way each
 * namespace's probe starts in messages_due_by_namespace by a row comparison (see firstAfter).
 */
export function nextWakeFallbackQuery(after?: string) {
  const from = after === undefined ? sql`now()` : sql`${after}::timestamptz`;
  const walked = sql.lit(WAITING_NAMESPACES_WALKED);
  // The due time of the namespace's (tenant, name) first waiting message after `from`: a row
  // comparison, which only messages_due_by_namespace can start at (a walk of messages_due from
  // `from` on, filtered by namespace, would read every closed namespace's delayed messages for
  // each namespace, as the planner chose on a small table), checked to be of the namespace.
  const firstAfter = (tenant: RawBuilder<unknown>, name: RawBuilder<unknown>) => sql`(
      select case when x.tenant_id = ${tenant} and x.namespace = ${name} then x.due_at end
      from (
        select m.tenant_id, m.namespace, m.due_at from wal.messages m
        where m.backend = 'postgres' and m.state in ('pending', 'scheduled', 'retrying')
          and (m.tenant_id, m.namespace, m.due_at) > (${tenant}, ${name}, ${from})
        order by m.tenant_id, m.namespace, m.due_at
        limit 1) x)`;
  return sql<{ ms: number | string | null }>`
      with recursive waiting_ns as (
        -- The namespaces holding any waiting postgres-backend message, with the earliest due time
        -- of each, one index probe apiece (messages_due_by_namespace, skipping from one namespace
        -- to the next, as the lease's waiting_ns does), at most WAITING_NAMESPACES_WALKED: an
        -- empty namespace, as most of a large deployment's are at any moment, costs nothing.
        (select m.tenant_id, m.namespace, m.due_at, 1 as n from wal.messages m
          where m.backend = 'postgres' and m.state in ('pending', 'scheduled', 'retrying')
          order by m.tenant_id, m.namespace, m.due_at
          limit 1)
        union all
        select x.tenant_id, x.namespace, x.due_at, p.n + 1 from waiting_ns p cross join lateral (
          select m.tenant_id, m.namespace, m.due_at from wal.messages m
          where m.backend = 'postgres' and m.state in ('pending', 'scheduled', 'retrying')
            and (m.tenant_id, m.namespace) > (p.tenant_id, p.namespace)
          order by m.tenant_id, m.namespace, m.due_at
          limit 1) x
        where p.n < ${walked}
      )
      select (extract(epoch from (
        case when (select count(*) from waiting_ns) < ${walked} then (
            -- Each looked up by its key, only when its CASE branch is reached (subqueries the
            -- planner keeps as they are): whether it is open, then, when its earliest waiting
            -- message is not after the time looked from (one leased by others, or waiting behind
            -- its key), its first after it.
            select min(case
                when not coalesce((
                    select n.enabled and not n.paused from wal.namespaces n
                    where n.tenant_id = w.tenant_id and n.name = w.namespace), false) then null
                when w.due_at > ${from} then w.due_at
                else ${firstAfter(sql`w.tenant_id`, sql`w.namespace`)}
              end)
            from waiting_ns w)
          else (
            select min(${firstAfter(sql`n.tenant_id`, sql`n.name`)})
            from wal.namespaces n
            where n.enabled and not n.paused) end
      ) - now()) * 1000)::double precision as ms`;
}
