import { sql } from 'kysely';
import { withTenant } from '../platform/db/index.ts';
import type { Breakers } from './breakers.ts';
import { getCampaign, statusOf } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import type { AttemptStats } from './stats.ts';
import type { FlashSalesTrx } from './tables.ts';

/**
 * 002's FlashSaleStats of one campaign: the record's side from PostgreSQL (admitted, paid, pending
 * payment, released, remaining, revenue), the attempts' side from this process (attempts,
 * rejections by reason, admissions per second, latency), and the queues and breakers that say
 * whether the sale is keeping up.
 */
export async function campaignStats(
  deps: FlashSalesDeps,
  attempts: AttemptStats,
  breakers: Breakers,
  queue: { depth(): number },
  tenantId: string,
  id: string,
) {
  const { campaign, counts } = await withTenant(deps.db, tenantId, async (anyTrx) => {
    const trx = anyTrx as FlashSalesTrx;
    const campaign = await getCampaign(trx, id);
    const { rows } = await sql<{
      status: string;
      waiting_token: boolean;
      units: string | number;
      n: string | number;
    }>`
      select status, payment is not null as waiting_token, sum(quantity) as units, count(*) as n
      from flash_sales.admissions where campaign_id = ${campaign.id}
      group by status, payment is not null`.execute(trx);
    return { campaign, counts: rows };
  });
  const unitsOf = (status: string, token?: boolean) =>
    counts
      .filter((r) => r.status === status && (token === undefined || r.waiting_token === token))
      .reduce((sum, r) => sum + Number(r.units), 0);
  const seen = attempts.view(campaign.id);
  return {
    campaignId: campaign.id,
    status: statusOf(campaign),
    units: campaign.units,
    attempts: seen.attempts,
    admitted: campaign.admitted + campaign.released,
    rejected: seen.rejected,
    unverifiedSoldOut: seen.unverifiedSoldOut,
    paid: campaign.sold,
    pendingPayment: unitsOf('admitted'),
    paying: unitsOf('paying'),
    released: campaign.released,
    remaining: campaign.units - campaign.admitted,
    revenue: campaign.sold * campaign.salePrice,
    currency: campaign.currency,
    conversion: seen.attempts === 0 ? null : Math.min(1, campaign.sold / seen.attempts),
    admissionsPerSecond: seen.admissionsPerSecond,
    admissionLatencyMs: seen.latencyMs,
    queues: {
      admissionsWaitingForCommit: queue.depth(),
      ordersWaitingForPayment: unitsOf('admitted', true),
    },
    breakers: { database: breakers.state('database'), payments: breakers.state('payments') },
    at: new Date().toISOString(),
  };
}
