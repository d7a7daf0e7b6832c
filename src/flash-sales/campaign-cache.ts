import { withTenant } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import { type Campaign, getCampaign } from './campaign-store.ts';
import type { FlashSalesDb, FlashSalesTrx } from './tables.ts';

/** How long a campaign read serves the admission path: its settings change only before it starts. */
const TTL_MS = 1000;

/**
 * The campaigns the admission path reads, kept in process for a second (one read per campaign per
 * second per process, whatever the stampede); concurrent misses share one read; a change made in
 * this process drops its entry at once. A campaign's counters here are stale by design: the gate
 * and the record decide on units, this only answers "which campaign, is it live, its limit".
 */
export function createCampaignCache(db: FlashSalesDb, now: () => number = Date.now) {
  const entries = new Map<string, { campaign: Campaign | undefined; at: number }>();
  const loading = new Map<string, Promise<Campaign | undefined>>();
  const keyOf = (tenantId: string, id: string) => `${tenantId}:${id}`;
  return {
    /** The tenant's campaign, or undefined when it has none with this id. */
    async get(tenantId: string, id: string): Promise<Campaign | undefined> {
      const key = keyOf(tenantId, id);
      const hit = entries.get(key);
      if (hit && now() - hit.at < TTL_MS) return hit.campaign;
      let pending = loading.get(key);
      if (!pending) {
        pending = withTenant(db, tenantId, (trx) => getCampaign(trx as FlashSalesTrx, id))
          .catch((error) => {
            if (error instanceof AppError && error.code === 'NOT_FOUND') return undefined;
            throw error;
          })
          .then((campaign) => {
            entries.set(key, { campaign, at: now() });
            return campaign;
          })
          .finally(() => loading.delete(key));
        loading.set(key, pending);
      }
      return pending;
    },
    /** The tenant's campaign when this process read it within the last second; never reads. */
    peek(tenantId: string, id: string): Campaign | undefined {
      const hit = entries.get(keyOf(tenantId, id));
      return hit && now() - hit.at < TTL_MS ? hit.campaign : undefined;
    },
    drop(tenantId: string, id: string): void {
      entries.delete(keyOf(tenantId, id));
    },
  };
}

export type CampaignCache = ReturnType<typeof createCampaignCache>;
