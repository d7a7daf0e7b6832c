import { type Kysely, sql } from 'kysely';
import type { WalTables } from '../../tables.ts';

type Db = Kysely<WalTables>;

/**
 * Milliseconds until the queue next needs a look (by the database's clock; 0 or less: now): the
 * earliest due time of a waiting message or lease expiry of a delivering one after `since` (the
 * time of the last lease, so a row that fell due since is not missed); undefined when nothing
 * waits. Rows due by `since` and not leased are held by another consumer or wait behind their
 * key, whose completion loops that consumer again. One read-only statement, run without a
 * transaction (one round trip: it reads one snapshot all the same).
 */
export async function nextWakeInMs(db: Db, since?: Date): Promise<number | undefined> {
  const result = await nextWakeQuery(since).execute(db);
  const ms = result.rows[0]?.ms;
  return ms === null || ms === undefined ? undefined : Number(ms);
}

/** nextWakeInMs's statement. */
export function nextWakeQuery(since?: Date) {
  const after = since ? sql`${since.toISOString()}::timestamptz` : sql`now()`;
  return sql<{ ms: number | string | null }>`
      select (extract(epoch from least(
        -- The earliest of an open namespace among the first 100 waiting (messages_due, walked in
        -- order: the backend is checked after the walk, so the planner cannot read the whole of
        -- messages_due_by_namespace and sort it instead). Only when all 100 are of closed
        -- namespaces (or other backends), each open namespace's earliest (messages_due_by_namespace,
        -- as the lease walks them): a disabled or paused namespace's thousands of delayed messages
        -- are never all read, nor every namespace when little waits.
        (select case when f.earliest is not null or f.walked < 100 then f.earliest else (
            select min(d.due_at) from wal.namespaces n cross join lateral (
                select m.due_at from wal.messages m
                where m.tenant_id = n.tenant_id and m.namespace = n.name
                  and m.state in ('pending', 'scheduled', 'retrying') and m.backend = 'postgres'
                  and m.due_at > ${after}
                order by m.due_at
                limit 1) d
              where n.enabled and not n.paused) end
          from (
            select min(x.due_at) filter (where n.name is not null and x.backend = 'postgres') as earliest,
              count(*) as walked
            from (
                select m.due_at, m.tenant_id, m.namespace, m.backend from wal.messages m
                where m.state in ('pending', 'scheduled', 'retrying') and m.due_at > ${after}
                order by m.due_at, m.id
                limit 100) x
              left join wal.namespaces n on n.tenant_id = x.tenant_id and n.name = x.namespace
                and n.enabled and not n.paused) f),
        (select min(lease_expires_at) from wal.messages where state = 'delivering' and lease_expires_at >= ${after})
      ) - now()) * 1000)::double precision as ms`;
}
