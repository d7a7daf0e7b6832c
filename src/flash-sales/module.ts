import type { AppContext, MercatoModule } from '../platform/index.ts';
import { admissionRoutes } from './admission-routes.ts';
import { campaignRoutes } from './campaign-routes.ts';
import type { FlashSalesDeps, FlashSalesModuleDeps } from './deps.ts';
import { createMemoryGate } from './gate-memory.ts';
import { createRedisGate } from './gate-redis.ts';
import { orderOutcomes } from './order-outcomes.ts';
import { createParts } from './parts.ts';
import { reconcileCampaign } from './reconcile.ts';
import { soldOutAnswer } from './sold-out-answer.ts';
import { withSoldOutMemory } from './sold-out-memory.ts';
import type { FlashSalesDb } from './tables.ts';

export type FlashSalesModule = MercatoModule & {
  /** Compares the gate with the record for one campaign and repairs it (the CLI's `flash-sales reconcile`). */
  reconcile(tenantId: string, campaignId: string): ReturnType<typeof reconcileCampaign>;
  /** Runs the lifecycle's work now: starts, ends, closed payment windows (tests). */
  tick(): Promise<void>;
};

/**
 * Flash sales: campaigns holding their units as an inventory pool, admission through a gate
 * (Redis with REDIS_URL, else in process) and group commit, paid orders through the checkout
 * saga in batches, the sale's clock, stats and reconciliation.
 */
export async function createFlashSales(
  ctx: AppContext,
  moduleDeps: FlashSalesModuleDeps,
): Promise<FlashSalesModule> {
  const logger = ctx.logger.child({ module: 'flash-sales' });
  const gate = withSoldOutMemory(
    ctx.config.redisUrl
      ? await createRedisGate({
          url: ctx.config.redisUrl,
          prefix: ctx.config.redisPrefix,
          logger,
          // A hung Redis is refused (503) after 3 s; a down one at once (no offline queue).
          // Shorter fails attempts whose answer waits behind a busy event loop (PGlite runs in it).
          commandTimeoutMs: 3000,
        })
      : createMemoryGate(),
  );
  const deps: FlashSalesDeps = { ...moduleDeps, ctx, db: ctx.db.kysely as FlashSalesDb, gate };
  const parts = createParts(deps, logger);
  deps.events.subscribe(orderOutcomes(deps, logger));
  const early = soldOutAnswer(gate, parts.cache, parts.attempts);
  return {
    name: 'flash-sales',
    beforeAuth: early,
    async routes(app) {
      await app.register(campaignRoutes(deps, parts));
      await app.register(admissionRoutes(deps, parts));
    },
    async start() {
      parts.start();
    },
    async stop() {
      await parts.close();
      await gate.close();
    },
    reconcile: (tenantId, campaignId) => reconcileCampaign(deps, tenantId, campaignId),
    tick: () => parts.lifecycle.tick(),
  };
}
