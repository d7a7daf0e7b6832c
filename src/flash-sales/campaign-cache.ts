import { withTenant } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import { type Campaign, getCampaign } from './campaign-store.ts';
import type { FlashSalesDb, FlashSalesTrx } from './tables.ts';

/** How long a campaign read serves the admission path: its settings change only before it starts. */
const TTL_MS = 1000;
/**
 * From this age on, a peek at the entry reads the campaign again in the background, so that under
 * steady traffic the entry is fresh again before it expires and no attempt finds it missing.
 */
const REFRESH_AFTER_MS = 750;

/**
 * The campaigns the admission path reads, kept in process for a second (one read per campaign per
 * second per process, whatever the stampede); concurrent misses share one read; a change made in
 * this process drops its entry at once. A campaign's counters here are stale by design: the gate
 * and the record decide on units, this only answers "which campaign, is it live, its limit".
 */
export function createCampaignCache(db: FlashSalesDb, now: () => number = Date.now) {
  // `refreshing`: a peek has started this entry's one background read.
  const entries = new Map<string, { campaign: Campaign | undefined; at: number; refreshing?: true }>();
  const loading = new Map<string, Promise<Campaign | undefined>>();
  const keyOf = (tenantId: string, id: string) => `${tenantId}:${id}`;
  let sweptAt = now();
  /**
   * Drops the entries no read or peek serves any more (a second old), at most once a second, as an
   * entry is stored: the map holds what was read in the last two seconds or so. Kept for ever, every
   * id an attempt named stayed (a miss is cached too): a customer within the attempt limits, naming a
   * fresh id of no sale each time, grew the process by an entry per attempt (5 a second: 430,000 a
   * day per account) until it ran out of memory.
   */
  const sweep = (at: number) => {
    if (at - sweptAt < TTL_MS) return;
    sweptAt = at;
    for (const [key, entry] of entries) if (at - entry.at >= TTL_MS) entries.delete(key);
  };
  /** Reads the campaign into its entry; one read at a time per campaign, shared by its callers. */
  const load = (tenantId: string, id: string, key: string): Promise<Campaign | undefined> => {
    let pending = loading.get(key);
    if (!pending) {
      pending = withTenant(db, tenantId, (trx) => getCampaign(trx as FlashSalesTrx, id))
        .catch((error) => {
          if (error instanceof AppError && error.code === 'NOT_FOUND') return undefined;
          throw error;
        })
        .then((campaign) => {
          // A read that a drop overtook (it may have read the campaign as it was) is not kept.
          if (loading.get(key) === pending) {
            const at = now();
            sweep(at);
            entries.set(key, { campaign, at });
          }
          return campaign;
        })
        .finally(() => {
          if (loading.get(key) === pending) loading.delete(key);
        });
      loading.set(key, pending);
    }
    return pending;
  };
  return {
    /** The tenant's campaign, or undefined when it has none with this id. */
    async get(tenantId: string, id: string): Promise<Campaign | undefined> {
      const key = keyOf(tenantId, id);
      const hit = entries.get(key);
      if (hit && now() - hit.at < TTL_MS) return hit.campaign;
      return load(tenantId, id, key);
    },
    /**
     * The tenant's campaign when this process read it within the last second; never waits for a
     * read. Past REFRESH_AFTER_MS it starts one read in the background, once per entry (a failed
     * one is not tried again by peeks, whatever their rate: the entry lapses and the next get
     * meets the failure), so the sold-out answer (sold-out-answer.ts) keeps an entry to answer
     * from while attempts keep coming: without it, every attempt in flight when the entry expired
     * went the whole way (its token verified, the gate asked), 256 a second at 256 connections.
     */
    peek(tenantId: string, id: string): Campaign | undefined {
      const key = keyOf(tenantId, id);
      const hit = entries.get(key);
      if (!hit) return undefined;
      const age = now() - hit.at;
      if (age >= TTL_MS) return undefined;
      if (age >= REFRESH_AFTER_MS && !hit.refreshing) {
        hit.refreshing = true;
        load(tenantId, id, key).catch(() => {});
      }
      return hit.campaign;
    },
    /** Entries held (read within about the last two seconds). */
    size(): number {
      return entries.size;
    },
    drop(tenantId: string, id: string): void {
      const key = keyOf(tenantId, id);
      entries.delete(key);
      loading.delete(key);
    },
  };
}

export type CampaignCache = ReturnType<typeof createCampaignCache>;
