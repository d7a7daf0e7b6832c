import { type Kysely, sql, type Transaction } from 'kysely';
import { withTenant } from '../../platform/db/index.ts';
import { lockStockFlags, tryLockStockFlags } from './stock-levels.ts';

// biome-ignore lint/suspicious/noExplicitAny: the caller's catalog transaction (withTenant)
type Trx = Transaction<any>;

/** Stale words checked (and removed when no active product gives them) per transaction at most. */
export const PRUNE_BATCH = 2_000;

/**
 * Records the words a rebuild took away from its products (they may be no active product's any
 * more), then, if no other rebuild of the tenant is under way, removes up to PRUNE_BATCH such
 * words that no active document gives. The caller is a rebuild holding the tenant's stock-flags
 * lock shared (indexProducts); it tries (never waits) to hold it exclusively: then no rebuild of
 * the tenant is uncommitted, and none can start before this commits, so no word a concurrent
 * rebuild adds is removed (it found the word present and did not insert it). When another rebuild
 * holds it, the words wait in `search_terms_stale` for the next one that can. Nothing is removed
 * while an active document of the tenant predates migration 0064 (its words are unknown).
 */
export async function pruneDictionary(trx: Trx, tenantId: string, dropped: string[]): Promise<void> {
  if (dropped.length > 0)
    await sql`insert into catalog.search_terms_stale (tenant_id, term)
      select ${tenantId}, t from unnest(${dropped}::text[]) t order by t
      on conflict do nothing`.execute(trx);
  else {
    const { rows } = await sql<{ any: boolean }>`select exists (select 1 from catalog.search_terms_stale
        where tenant_id = ${tenantId}) as any`.execute(trx);
    if (!rows[0]?.any) return;
  }
  if ((await tryLockStockFlags(trx, tenantId)) && !(await unworded(trx, tenantId)))
    await pruneStale(trx, tenantId);
}

/** Whether an active document of the tenant predates migration 0064 (its words are unknown). */
async function unworded(trx: Trx, tenantId: string): Promise<boolean> {
  const { rows } = await sql<{
    unworded: boolean;
  }>`select exists (select 1 from catalog.tenant_search_documents
      where tenant_id = ${tenantId} and terms is null and status = 'active') as unworded`.execute(trx);
  return rows[0]?.unworded ?? false;
}

/**
 * Removes up to PRUNE_BATCH stale words from the dictionary unless an active document gives them,
 * and forgets them. The caller holds the tenant's stock-flags lock exclusively. Answers how many
 * stale words it looked at.
 */
export async function pruneStale(trx: Trx, tenantId: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`with checked as (
      delete from catalog.search_terms_stale s
      where s.tenant_id = ${tenantId} and s.term in (
        select term from catalog.search_terms_stale where tenant_id = ${tenantId} limit ${PRUNE_BATCH})
      returning s.term
    ), removed as (
      delete from catalog.search_terms w using checked
      where w.tenant_id = ${tenantId} and w.term = checked.term
        and not exists (select 1 from catalog.tenant_search_documents d
          where d.tenant_id = ${tenantId} and d.terms @> array[checked.term])
    )
    select count(*)::int as n from checked`.execute(trx);
  return rows[0]?.n ?? 0;
}

/**
 * Queues the tenant's dictionary words after `after` (PRUNE_BATCH of them, in byte order) for
 * checking: `mercato catalog reindex` sweeps the whole dictionary this way once every document
 * knows its words. Answers the last word queued (undefined: none left).
 */
export async function queueDictionary(
  trx: Trx,
  tenantId: string,
  after: string,
): Promise<string | undefined> {
  const terms = (
    await sql<{ term: string }>`select term from catalog.tenant_search_terms
      where tenant_id = ${tenantId} and term ~>~ ${after} order by term using ~<~ limit ${PRUNE_BATCH}`.execute(
      trx,
    )
  ).rows.map((r) => r.term);
  if (terms.length === 0) return undefined;
  await sql`insert into catalog.search_terms_stale (tenant_id, term)
    select ${tenantId}, t from unnest(${terms}::text[]) t on conflict do nothing`.execute(trx);
  return terms.at(-1);
}

/**
 * Checks every word of the tenant's dictionary, PRUNE_BATCH per transaction (each under the
 * tenant's stock-flags lock, held exclusively as a stock event batch holds it: no rebuild under
 * way), removing those no active document gives. For `mercato catalog reindex`, after which every
 * document knows its words: words left by products gone before migration 0064 go too. Does
 * nothing while an active document's words are unknown (a product written during the reindex by
 * an older server). Answers how many words were removed.
 */
// biome-ignore lint/suspicious/noExplicitAny: any module's database (withTenant)
export async function sweepDictionary(db: Kysely<any>, tenantId: string): Promise<number> {
  const count = () =>
    withTenant(db, tenantId, async (trx) => {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from catalog.tenant_search_terms
        where tenant_id = ${tenantId}`.execute(trx);
      return rows[0]!.n;
    });
  const before = await count();
  let after: string | undefined = '';
  for (;;) {
    const from: string | undefined = after;
    const step = await withTenant(db, tenantId, async (trx): Promise<{ done: boolean; last?: string }> => {
      await lockStockFlags(trx, tenantId, 'events');
      if (await unworded(trx, tenantId)) return { done: true };
      const last = from === undefined ? undefined : await queueDictionary(trx, tenantId, from);
      const checked = await pruneStale(trx, tenantId);
      return { done: last === undefined && checked < PRUNE_BATCH, last };
    });
    if (step.done) break;
    after = step.last;
  }
  return before - (await count());
}
