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
  const after = since ? sql`${since.toISOString()}::timestamptz` : sql`now()`;
  const result = await sql<{ ms: number | string | null }>`
      select (extract(epoch from least(
        (select min(m.due_at) from wal.messages m join wal.namespaces n on n.tenant_id = m.tenant_id
          and n.name = m.namespace and n.enabled and not n.paused
          where m.state in ('pending', 'scheduled', 'retrying') and m.backend = 'postgres'
            and m.due_at > ${after}),
        (select min(lease_expires_at) from wal.messages where state = 'delivering' and lease_expires_at >= ${after})
      ) - now()) * 1000)::double precision as ms`.execute(db);
  const ms = result.rows[0]?.ms;
  return ms === null || ms === undefined ? undefined : Number(ms);
}
