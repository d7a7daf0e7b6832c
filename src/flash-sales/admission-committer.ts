import type { Logger } from 'pino';
import { databaseProblem, isTransientConflict, together, withTenant } from '../platform/db/index.ts';
import type { DomainEvent, EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { type Admission, customersOf, toAdmission } from './admission-store.ts';
import { addressKey, shippingAddresses } from './batch-addresses.ts';
import type { Breakers } from './breakers.ts';
import { campaignEvent, publishCampaignEvents } from './campaign-events.ts';
import { type Campaign, getCampaign, poolKey, statusOf } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import { flashOrder } from './flash-order.ts';
import { dedupeKey } from './gate.ts';
import type { FlashSalesTrx } from './tables.ts';

/** An attempt the gate admitted, to be made the record. */
export type Candidate = {
  tenantId: string;
  campaignId: string;
  customerId: string;
  key: string;
  requestHash: string;
  orderId: string;
  quantity: number;
  payment: { provider: string; token: string } | undefined;
  shippingAddressId: string | undefined;
  meta: EventMeta;
};

/**
 * What the record made of it: admitted (its order now exists), a duplicate (the admission its key
 * made earlier), or refused by PostgreSQL's own check; `giveBack`: the gate counted units the
 * record does not hold, to be given back.
 */
export type Committed =
  | { outcome: 'admitted'; admission: Admission }
  | { outcome: 'duplicate'; admission: Admission }
  | { outcome: 'refused'; error: AppError };

type Waiter = { candidate: Candidate; resolve(c: Committed): void; reject(e: unknown): void };

/** Most attempts one transaction takes. */
const MAX_BATCH = 256;

/**
 * Group commit of admissions, as the WAL's writes: per campaign, the attempts that arrive while a
 * transaction is out share the next one, which locks the campaign's row, re-checks every attempt
 * against the record (units left, the per-customer limit, its key), creates the orders and moves
 * their units from the pool into each order's reservation, and raises the campaign's counter, in
 * about ten statements whatever the batch's size. Each caller is answered when that commit
 * returns: a 202 means the order exists.
 */
export function createAdmissionCommitter(
  deps: FlashSalesDeps,
  breakers: Breakers,
  logger: Logger,
  onCommitted: (tenantId: string, campaignId: string, admitted: Admission[]) => void,
) {
  const queues = new Map<string, Waiter[]>();
  const busy = new Set<string>();
  const inFlight = new Set<Promise<void>>();

  async function flush(campaignId: string): Promise<void> {
    const waiting = queues.get(campaignId) ?? [];
    queues.delete(campaignId);
    const batch = waiting.splice(0, MAX_BATCH);
    if (waiting.length > 0) queues.set(campaignId, waiting);
    busy.add(campaignId);
    try {
      const tenantId = batch[0]!.candidate.tenantId;
      // Taken on another connection while the batch's transaction locks and reads (awaited where
      // the orders are made); PGlite's one session must answer them first.
      const numbers = Promise.all(batch.map(() => deps.orders.takeNumber(tenantId)));
      numbers.catch(() => {}); // awaited in commitBatch
      if (deps.ctx.db.kind === 'pglite') await numbers;
      const answers = await breakers.run('database', async () => {
        // A transaction undone by a concurrent one (the sale's pool shares its item's row with
        // other sales and checkouts: isTransientConflict) is run again, as the inventory's
        // batcher does.
        for (let attempt = 1; ; attempt += 1) {
          try {
            return await withTenant(deps.db, tenantId, (trx) =>
              commitBatch(
                deps,
                trx as FlashSalesTrx,
                campaignId,
                batch.map((w) => w.candidate),
                numbers,
              ),
            );
          } catch (error) {
            if (attempt >= 3 || !isTransientConflict(error)) throw error;
          }
        }
      });
      for (const [i, w] of batch.entries()) w.resolve(answers[i]!);
      const admitted = answers.flatMap((a) => (a.outcome === 'admitted' ? [a.admission] : []));
      if (admitted.length > 0) onCommitted(tenantId, campaignId, admitted);
    } catch (error) {
      logger.warn(
        { err: error, campaignId, attempts: batch.length },
        'flash-sales: an admission batch failed',
      );
      const problem =
        databaseProblem(error) ??
        (error instanceof AppError
          ? error
          : new AppError('SERVICE_UNAVAILABLE', 'admission could not be recorded', { retryAfterSeconds: 1 }));
      for (const w of batch) w.reject(problem);
    } finally {
      busy.delete(campaignId);
      if (queues.has(campaignId)) track(flush(campaignId));
    }
  }

  const track = (p: Promise<void>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };

  return {
    /** Resolves once the attempt's transaction committed (or was refused); rejects when it could not be recorded. */
    submit(candidate: Candidate): Promise<Committed> {
      return new Promise<Committed>((resolve, reject) => {
        const queue = queues.get(candidate.campaignId);
        if (queue) queue.push({ candidate, resolve, reject });
        else queues.set(candidate.campaignId, [{ candidate, resolve, reject }]);
        if (!busy.has(candidate.campaignId)) track(flush(candidate.campaignId));
      });
    },
    /** Attempts waiting for a transaction (the stats' queue depth). */
    depth(): number {
      let n = 0;
      for (const q of queues.values()) n += q.length;
      return n;
    },
    async close(): Promise<void> {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}

/** One batch's transaction (see createAdmissionCommitter); answers in the candidates' order. */
async function commitBatch(
  deps: FlashSalesDeps,
  trx: FlashSalesTrx,
  campaignId: string,
  candidates: Candidate[],
  numbered: Promise<number[]>,
): Promise<Committed[]> {
  const now = new Date();
  const tenantId = candidates[0]!.tenantId;
  // Sent together (one round trip): the reads run once the campaign's lock is granted, so they
  // see every batch committed before it.
  const [campaign, { units, byKey }, addresses] = await together([
    getCampaign(trx, campaignId, true),
    customersOf(
      trx,
      campaignId,
      candidates.map((c) => c.customerId),
    ),
    shippingAddresses(deps, trx, candidates),
  ]);
  const status = statusOf(campaign, now);
  if (status !== 'live' && status !== 'sold_out') {
    const error = new AppError('NOT_LIVE', `flash sale ${campaignId} is ${status}`);
    return candidates.map(() => ({ outcome: 'refused', error }));
  }
  let admitted = campaign.admitted;
  const answers: Committed[] = [];
  const accepted: { candidate: Candidate; index: number }[] = [];
  for (const [index, c] of candidates.entries()) {
    const earlier = byKey.get(dedupeKey(c.customerId, c.key));
    if (earlier) {
      answers.push(
        earlier.requestHash === c.requestHash
          ? { outcome: 'duplicate', admission: earlier }
          : {
              outcome: 'refused',
              error: new AppError(
                'IDEMPOTENCY_KEY_REUSED',
                'this Idempotency-Key was used with another request',
              ),
            },
      );
      continue;
    }
    const held = units.get(c.customerId) ?? 0;
    if (held + c.quantity > campaign.perCustomerLimit) {
      answers.push({ outcome: 'refused', error: limitReached(campaign, held) });
      continue;
    }
    if (admitted + c.quantity > campaign.units) {
      answers.push({ outcome: 'refused', error: soldOut(campaign) });
      continue;
    }
    const address = addresses.get(addressKey(c));
    if (!address) {
      answers.push({
        outcome: 'refused',
        error: new AppError(
          'CHECKOUT_INVALID',
          c.shippingAddressId
            ? `address ${c.shippingAddressId} is not one of your shipping addresses`
            : 'you have no default shipping address: add one, or name one with shippingAddressId',
        ),
      });
      continue;
    }
    admitted += c.quantity;
    units.set(c.customerId, held + c.quantity);
    // The attempt is in the batch now: the same key again in this batch is its duplicate.
    const placeholder = { outcome: 'admitted' } as Committed;
    answers.push(placeholder);
    byKey.set(dedupeKey(c.customerId, c.key), {
      orderId: c.orderId,
      requestHash: c.requestHash,
    } as Admission);
    accepted.push({ candidate: c, index });
  }
  if (accepted.length === 0) return answers;
  const numbers = await numbered;
  const payBy = new Date(now.getTime() + campaign.paymentWindowMinutes * 60_000);
  const announced = { ...campaign.announced };
  const made: DomainEvent[] = [];
  const after: Campaign = { ...campaign, admitted, announced };
  if (!announced.started) {
    announced.started = now.toISOString();
    made.push(campaignEvent('started', after, now));
  }
  if (admitted >= campaign.units && !announced.soldOut) {
    announced.soldOut = now.toISOString();
    made.push(campaignEvent('soldOut', after, now));
  }
  // Set-oriented, and sent together (none reads what another writes): the orders in one
  // statement, their units moved from the pool in one batch, the admissions, the campaign's count.
  const [, moved, rows] = await together([
    deps.orders.createMany(
      trx,
      tenantId,
      accepted.map(({ candidate: c }) => flashOrder(campaign, c, addresses.get(addressKey(c))!)),
      accepted.map((a) => numbers[a.index]!),
      accepted.map(({ candidate: c }) => c.meta),
    ),
    deps.inventory.within(trx).transferMany(
      tenantId,
      accepted.map(({ candidate: c }) => ({
        input: {
          from: poolKey(campaign.id),
          to: `order-${c.orderId}`,
          lines: [{ variantId: campaign.variantId, quantity: c.quantity }],
          ttlSeconds: orderHoldSeconds(campaign, now),
          reference: `order:${c.orderId}`,
          actor: `flash-sale:${campaign.id}`,
        },
        meta: c.meta,
      })),
    ),
    trx
      .insertInto('flash_sales.admissions')
      .values(
        accepted.map(({ candidate: c }) => ({
          order_id: c.orderId,
          tenant_id: tenantId,
          campaign_id: campaign.id,
          customer_id: c.customerId,
          idempotency_key: c.key,
          request_hash: c.requestHash,
          quantity: c.quantity,
          status: 'admitted' as const,
          payment: c.payment ? JSON.stringify(c.payment) : null,
          pay_by: payBy,
          admitted_at: now,
          updated_at: now,
        })),
      )
      .returningAll()
      .execute(),
    trx
      .updateTable('flash_sales.campaigns')
      .set({ admitted, announced: JSON.stringify(announced), updated_at: now })
      .where('id', '=', campaign.id)
      .execute(),
  ]);
  // The pool holds every unit not admitted (the sale's row is locked): a refusal here is a bug or
  // a pool changed behind the sale's back; nothing of the batch is recorded then.
  const refused = moved.find((m) => m instanceof AppError);
  if (refused) throw refused;
  const byOrder = new Map(rows.map((r) => [r.order_id, toAdmission(r)]));
  for (const { candidate: c, index } of accepted) {
    answers[index] = { outcome: 'admitted', admission: byOrder.get(c.orderId)! };
  }
  await publishCampaignEvents(deps.events, trx, tenantId, made);
  return answers;
}

/**
 * How long an admitted order's reservation holds its units: as long as the sale's pool (to the
 * sale's end, its payment window and an hour; under 30 days), while the window's own sweep gives
 * unpaid units back at the deadline. Held only to the window's close and ten minutes, the units
 * expired into available stock when the sweep was late (every process down for a deploy, or a
 * saga still paying): out of the sale, which still counted them as its own when the order was
 * released, so its pool fell short of units − admitted and every batch asking for the missing
 * units failed whole, the last units never sold.
 */
export const orderHoldSeconds = (
  campaign: Pick<Campaign, 'endsAt' | 'paymentWindowMinutes'>,
  now: Date,
): number =>
  Math.max(0, Math.ceil((campaign.endsAt.getTime() - now.getTime()) / 1000)) +
  campaign.paymentWindowMinutes * 60 +
  3600;

export const soldOut = (campaign: Pick<Campaign, 'id'>) =>
  new AppError('SOLD_OUT', `flash sale ${campaign.id} is sold out`);

export const limitReached = (campaign: Pick<Campaign, 'id' | 'perCustomerLimit'>, held: number) =>
  new AppError(
    'LIMIT_REACHED',
    `you hold ${held} of this sale's limit of ${campaign.perCustomerLimit} per customer`,
    { limit: campaign.perCustomerLimit, held },
  );
