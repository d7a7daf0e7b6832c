import type { Logger } from 'pino';
import type { EventMeta } from '../platform/events/index.ts';
import { createAdmissionCommitter } from './admission-committer.ts';
import { admissionService } from './admission-service.ts';
import { releaseAdmissions } from './admission-store.ts';
import { createAttemptLimiter } from './attempt-limiter.ts';
import { createBreakers } from './breakers.ts';
import { createCampaignCache } from './campaign-cache.ts';
import type { Campaign } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import { createLifecycle } from './lifecycle.ts';
import { createPaymentQueue } from './payment-queue.ts';
import { createAttemptStats } from './stats.ts';
import { campaignStats } from './stats-service.ts';
import type { FlashSalesTrx } from './tables.ts';
import { returnUnits } from './units-back.ts';

/** The running parts of the module in one process, made once and shared by its routes. */
export function createParts(deps: FlashSalesDeps, logger: Logger) {
  const breakers = createBreakers();
  const cache = createCampaignCache(deps.db);
  const attempts = createAttemptStats();
  const queue = createPaymentQueue(deps, breakers, logger);
  const committer = createAdmissionCommitter(deps, breakers, logger, (_tenantId, _campaignId, admitted) => {
    if (admitted.some((a) => a.status === 'admitted')) queue.kick();
  });
  const admissions = admissionService(deps, {
    cache,
    stats: attempts,
    submit: committer.submit,
    limits: {
      customer: createAttemptLimiter(deps.ctx.config.flashCustomerRate),
      ip: createAttemptLimiter(deps.ctx.config.flashIpRate),
    },
  });
  const lifecycle = createLifecycle(deps, logger);
  return {
    cache,
    attempts,
    admissions,
    queue,
    lifecycle,
    stats: (tenantId: string, id: string) => campaignStats(deps, attempts, breakers, committer, tenantId, id),
    /** In the cancel's transaction: every admission still waiting for payment is cancelled, its units back in the pool. */
    async cancelWaiting(
      trx: FlashSalesTrx,
      tenantId: string,
      campaign: Campaign,
      actor: string,
      meta: EventMeta,
    ) {
      const waiting = await trx
        .selectFrom('flash_sales.admissions')
        .select('order_id')
        .where('campaign_id', '=', campaign.id)
        .where('status', '=', 'admitted')
        .forUpdate()
        .execute();
      const released: string[] = [];
      for (const { order_id } of waiting) {
        // An order cancelled or failed already whose outcome the sale has not handled yet (its
        // event on the way, or dead-lettered) is released here too: moving it again was 409
        // ILLEGAL_TRANSITION, and no sale with such an order could be cancelled. Any other status
        // (paid meanwhile) is left to the order's outcome.
        const order = await deps.orders.get(trx, tenantId, order_id, { lock: true });
        if (order?.status === 'created') {
          await deps.orders.transition(trx, tenantId, order_id, 'cancelled', {
            actor,
            reason: 'the flash sale was cancelled',
            meta,
          });
        } else if (order && order.status !== 'cancelled' && order.status !== 'failed') continue;
        await returnUnits(deps, trx, tenantId, order_id, campaign.id, meta);
        released.push(order_id);
      }
      return (await releaseAdmissions(trx, campaign.id, released, 'cancelled')).length;
    },
    start(): void {
      lifecycle.start();
      queue.start();
    },
    async close(): Promise<void> {
      await lifecycle.close();
      await committer.close();
      await queue.close();
    },
  };
}

export type FlashSalesParts = ReturnType<typeof createParts>;
