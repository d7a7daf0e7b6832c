import type { Logger } from 'pino';
import type { EventMeta } from '../platform/events/index.ts';
import { createAdmissionCommitter } from './admission-committer.ts';
import { admissionService } from './admission-service.ts';
import { createAttemptLimiter } from './attempt-limiter.ts';
import { createBreakers } from './breakers.ts';
import { createCampaignCache } from './campaign-cache.ts';
import type { FlashSalesDeps } from './deps.ts';
import { createLifecycle } from './lifecycle.ts';
import { createPaymentQueue } from './payment-queue.ts';
import { createAttemptStats } from './stats.ts';
import { campaignStats } from './stats-service.ts';
import { cancelAllWaiting } from './waiting-orders.ts';

/**
 * How long a sale's cancel waits for its waiting orders to be cancelled before it answers (they
 * go on being cancelled in the background: parts.cancelWaiting).
 */
const CANCEL_ANSWER_MS = 5000;

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
  /** Cancelled sales whose waiting orders this process is cancelling, by sale id. */
  const cancelling = new Map<string, Promise<void>>();
  let stopped = false;
  return {
    cache,
    attempts,
    admissions,
    queue,
    lifecycle,
    stats: (tenantId: string, id: string) => campaignStats(deps, attempts, breakers, committer, tenantId, id),
    /**
     * After a sale's cancel committed (the sale cancelled and settled, the waiting admissions'
     * windows closed: closeWaitingWindows): ends its waiting admissions, their orders cancelled and
     * their units back to stock, in bounded transactions (waiting-orders.ts) run in the background
     * of this process, one run per sale at a time. Resolves once they are all ended or after
     * CANCEL_ANSWER_MS, whichever comes first: a cancel of thousands of admissions answers
     * while its batches go on (the sale shows `admitted` falling to 0). What a run leaves (the
     * process stopped or died, a batch failed) the lifecycle's window sweep ends, the same way.
     */
    async cancelWaiting(tenantId: string, campaignId: string, actor: string, meta: EventMeta) {
      let run = cancelling.get(campaignId);
      if (!run) {
        run = cancelAllWaiting(deps, tenantId, campaignId, actor, meta, () => stopped)
          .then(() => undefined)
          .catch((error) =>
            logger.warn(
              { err: error, campaignId },
              "flash-sales: a cancelled sale's waiting orders were not all cancelled; the window sweep goes on",
            ),
          )
          .finally(() => cancelling.delete(campaignId));
        cancelling.set(campaignId, run);
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        run,
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, CANCEL_ANSWER_MS);
        }),
      ]);
      clearTimeout(timer);
    },
    start(): void {
      lifecycle.start();
      queue.start();
    },
    async close(): Promise<void> {
      stopped = true;
      await Promise.all([...cancelling.values()]);
      await lifecycle.close();
      await committer.close();
      await queue.close();
    },
  };
}

export type FlashSalesParts = ReturnType<typeof createParts>;
