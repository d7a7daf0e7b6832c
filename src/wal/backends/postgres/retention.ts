import { type Kysely, sql } from 'kysely';
import { withSystem } from '../../../platform/db/index.ts';
import type { AppContext } from '../../../platform/index.ts';
import type { WalTables } from '../../tables.ts';

type Db = Kysely<WalTables>;

/**
 * Deletes delivered messages and dead letters older than their namespace's retention (one
 * statement per state; attempts go with them by cascade, inbox rows are dropped alongside).
 *
 * The rows are found through the BRIN index messages_retention (migration 0039): first the
 * ranges of the heap no summary covers yet are summarized (without autovacuum nothing else does,
 * and an unsummarized range must always be read), then only ranges holding a finish older than
 * the shortest retention of any namespace are read. Each row is then held to its own namespace's,
 * or to maxRetentionSeconds (MERCATO_WAL_MAX_RETENTION_SECONDS) when that is shorter: a row stored
 * before the cap, or before the operator lowered it, may say more (as capRetention does for the
 * stream backends).
 */
export async function purgeRetention(
  db: Db,
  maxRetentionSeconds: number,
): Promise<{ delivered: number; dead: number }> {
  return withSystem(db, async (trx) => {
    await sql`select brin_summarize_new_values('wal.messages_retention'::regclass)`.execute(trx);
    const purge = async (state: 'delivered' | 'dead') => {
      const at = state === 'delivered' ? sql`m.delivered_at` : sql`m.dead_at`;
      const seconds = sql.ref(
        state === 'delivered' ? 'delivered_retention_seconds' : 'dead_retention_seconds',
      );
      const cap = sql.lit(Math.floor(maxRetentionSeconds));
      const { rows } = await sql<{ n: number }>`
        with purged as (
          delete from wal.messages m using wal.namespaces n
          where m.state = ${state} and n.tenant_id = m.tenant_id and n.name = m.namespace
            and coalesce(m.delivered_at, m.dead_at)
              < now() - least((select min(${seconds}) from wal.namespaces), ${cap}) * interval '1 second'
            and coalesce(m.delivered_at, m.dead_at)
              < now() - least(n.${seconds}, ${cap}) * interval '1 second'
            and ${at} is not null
          returning m.id
        ),
        inbox as (delete from wal.inbox i using purged p where i.message_pk = p.id)
        select count(*)::int as n from purged`.execute(trx);
      return rows[0]?.n ?? 0;
    };
    return { delivered: await purge('delivered'), dead: await purge('dead') };
  });
}

/**
 * Runs purgeRetention every intervalMs (Default: 3600000) on an unref'd timer; returns stop,
 * which waits for a purge in progress.
 */
export function startRetention(
  deps: { ctx: AppContext; db: Db },
  intervalMs = 3_600_000,
): () => Promise<void> {
  const log = deps.ctx.logger.child({ component: 'wal-retention' });
  let running: Promise<void> | undefined;
  const run = () => {
    if (running) return;
    running = purgeRetention(deps.db, deps.ctx.config.walMaxRetentionSeconds)
      .then((purged) => {
        if (purged.delivered + purged.dead > 0) log.info(purged, 'purged messages past retention');
      })
      .catch((error: unknown) => log.error({ err: error }, 'retention purge failed'))
      .finally(() => {
        running = undefined;
      });
  };
  const timer = setInterval(run, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
