import type { Static } from 'typebox';
import { lockNamed, withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { campaignEvent, publishCampaignEvents } from './campaign-events.ts';
import { type Campaign, getCampaign, lockedStatusOf, poolKey, toCampaign } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import type { CampaignPatchBody, NewCampaignBody } from './schemas.ts';
import type { FlashSalesTrx } from './tables.ts';

/** A campaign ends at most this far ahead: its pool is an inventory reservation (30 days at most). */
const MAX_AHEAD_MS = 28 * 86_400_000;
/**
 * Sales a tenant may have unsettled (scheduled, live, sold out, or ended with their pool not yet
 * back in stock). The lifecycle and the reconciliation scan every tenant's open sales in one
 * bounded pass, so one tenant's thousands of sales would delay everyone else's starts and ends.
 */
export const MAX_OPEN_CAMPAIGNS = 100;
/** The pool outlives the sale by the payment window and this margin (settlement releases it first). */
const POOL_MARGIN_SECONDS = 3600;

const invalid = (pointer: string, message: string) =>
  new AppError('VALIDATION_FAILED', `${pointer.slice(1)} ${message}`, {
    errors: [{ in: 'body', pointer, message }],
  });

/**
 * A sale's revenue (units × sale price, minor units) must stay a number JSON carries exactly: the
 * largest pool at the largest price is 10^17, past 2^53 − 1, where `revenue` in the stats would
 * lose its last digits. The sale is refused instead, as the cart refuses such a total
 * (CART_TOTAL_TOO_LARGE), naming the field the body changed (the price when both did).
 */
function checkRevenue(units: number, salePrice: number, pointer: '/units' | '/salePrice'): void {
  if (units * salePrice > Number.MAX_SAFE_INTEGER)
    throw invalid(
      pointer,
      `makes units × salePrice ${BigInt(units) * BigInt(salePrice)}, past ${Number.MAX_SAFE_INTEGER}, the largest revenue a JSON number holds exactly`,
    );
}

function checkTimes(startsAt: Date, endsAt: Date, now: Date): void {
  if (Number.isNaN(startsAt.getTime())) throw invalid('/startsAt', 'must be a date-time');
  if (Number.isNaN(endsAt.getTime())) throw invalid('/endsAt', 'must be a date-time');
  if (endsAt <= startsAt) throw invalid('/endsAt', 'must be after startsAt');
  if (endsAt <= now) throw invalid('/endsAt', 'must be in the future');
  if (endsAt.getTime() - now.getTime() > MAX_AHEAD_MS) throw invalid('/endsAt', 'must be within 28 days');
}

/** Seconds the pool is held: to the sale's end, its payment window and a margin. */
const poolTtl = (endsAt: Date, windowMinutes: number, now: Date) =>
  Math.ceil((endsAt.getTime() - now.getTime()) / 1000) + windowMinutes * 60 + POOL_MARGIN_SECONDS;

/**
 * Creates the campaign and its pool in one transaction: the allotted units leave available stock
 * as the reservation `flash-sale:<id>` (409 INSUFFICIENT_STOCK when there are not that many).
 */
export async function createCampaign(
  deps: FlashSalesDeps,
  tenantId: string,
  actor: string,
  body: Static<typeof NewCampaignBody>,
  meta: EventMeta,
): Promise<Campaign> {
  const now = new Date();
  const startsAt = new Date(body.startsAt);
  const endsAt = new Date(body.endsAt);
  checkTimes(startsAt, endsAt, now);
  checkRevenue(body.units, body.salePrice, '/salePrice');
  const windowMinutes = body.paymentWindowMinutes ?? 15;
  return withTenant(deps.db, tenantId, async (anyTrx) => {
    const trx = anyTrx as FlashSalesTrx;
    const [variant] = await deps.catalog.findVariants(tenantId, { ids: [body.variantId] }, trx);
    if (!variant) throw invalid('/variantId', 'names no variant of this store');
    if (variant.productStatus !== 'active') {
      throw new AppError(
        'PRODUCT_NOT_AVAILABLE',
        `${variant.sku} is not for sale (its product is ${variant.productStatus})`,
      );
    }
    // The store sells the variant only in the currencies it has a price in (as the cart does).
    if (variant.prices[body.currency] === undefined) {
      throw invalid('/currency', `names a currency ${variant.sku} has no price in`);
    }
    // Counted under a lock of the tenant's sales, so two created at once cannot both pass the limit.
    await lockNamed(trx, `flash_sales.campaigns:${tenantId}`);
    const { open } = await trx
      .selectFrom('flash_sales.campaigns')
      .select((eb) => eb.fn.countAll<string>().as('open'))
      .where('tenant_id', '=', tenantId)
      .where('settled_at', 'is', null)
      .executeTakeFirstOrThrow();
    if (Number(open) >= MAX_OPEN_CAMPAIGNS) {
      throw new AppError(
        'FLASH_SALE_LIMIT_REACHED',
        `a store has at most ${MAX_OPEN_CAMPAIGNS} flash sales not yet settled: cancel one, or wait for one to end`,
      );
    }
    const id = uuidv7();
    const row = await trx
      .insertInto('flash_sales.campaigns')
      .values({
        id,
        tenant_id: tenantId,
        name: body.name,
        variant_id: variant.variantId,
        product_id: variant.productId,
        sku: variant.sku,
        title: variant.productTitle,
        variant_title: variant.variantTitle,
        currency: body.currency,
        sale_price: body.salePrice,
        units: body.units,
        per_customer_limit: body.perCustomerLimit ?? 1,
        payment_window_minutes: windowMinutes,
        priority: body.priority ?? 'normal',
        starts_at: startsAt,
        ends_at: endsAt,
        created_by: actor,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await deps.inventory.within(trx).reserve(
      tenantId,
      {
        key: poolKey(id),
        lines: [{ variantId: variant.variantId, quantity: body.units }],
        ttlSeconds: poolTtl(endsAt, windowMinutes, now),
        reference: `flash-sale:${id}`,
        actor,
      },
      meta,
    );
    return toCampaign(row);
  });
}

/**
 * Changes a campaign before it starts (409 CAMPAIGN_STARTED after): more or fewer units move
 * between available stock and the pool, new times extend the pool's hold.
 */
export async function updateCampaign(
  deps: FlashSalesDeps,
  tenantId: string,
  id: string,
  actor: string,
  body: Static<typeof CampaignPatchBody>,
  meta: EventMeta,
): Promise<Campaign> {
  const updated = await withTenant(deps.db, tenantId, async (anyTrx) => {
    const trx = anyTrx as FlashSalesTrx;
    const current = await getCampaign(trx, id, true);
    const now = new Date();
    const status = lockedStatusOf(current, now);
    if (status !== 'scheduled') {
      throw new AppError(
        'CAMPAIGN_STARTED',
        `flash sale ${current.id} is ${status}; only scheduled ones change`,
      );
    }
    const startsAt = body.startsAt ? new Date(body.startsAt) : current.startsAt;
    const endsAt = body.endsAt ? new Date(body.endsAt) : current.endsAt;
    checkTimes(startsAt, endsAt, now);
    const windowMinutes = body.paymentWindowMinutes ?? current.paymentWindowMinutes;
    const inventory = deps.inventory.within(trx);
    const units = body.units ?? current.units;
    checkRevenue(
      units,
      body.salePrice ?? current.salePrice,
      body.salePrice !== undefined ? '/salePrice' : '/units',
    );
    const pool = poolKey(current.id);
    if (units !== current.units) {
      const lines = [{ variantId: current.variantId, quantity: Math.abs(units - current.units) }];
      const side = `${pool}:${units > current.units ? 'grow' : 'shrink'}:${uuidv7()}`;
      if (units > current.units) {
        await inventory.reserve(tenantId, { key: side, lines, ttlSeconds: 60, actor }, meta);
        await inventory.transfer(tenantId, { from: side, to: pool, actor }, meta);
      } else {
        await inventory.transfer(tenantId, { from: pool, to: side, lines, ttlSeconds: 60, actor }, meta);
        await inventory.release(tenantId, side, actor, meta);
      }
    }
    if (body.endsAt || body.paymentWindowMinutes) {
      await inventory.extend(tenantId, pool, poolTtl(endsAt, windowMinutes, now), actor, meta);
    }
    const row = await trx
      .updateTable('flash_sales.campaigns')
      .set({
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.salePrice !== undefined ? { sale_price: body.salePrice } : {}),
        ...(body.perCustomerLimit !== undefined ? { per_customer_limit: body.perCustomerLimit } : {}),
        ...(body.priority !== undefined ? { priority: body.priority } : {}),
        units,
        payment_window_minutes: windowMinutes,
        starts_at: startsAt,
        ends_at: endsAt,
        updated_at: now,
      })
      .where('id', '=', current.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    return toCampaign(row);
  });
  await deps.gate.drop(updated.id);
  return updated;
}

/**
 * Cancels a campaign that has not ended, in one short transaction: the campaign marked cancelled,
 * `closeWaiting` run in it (the payment windows of the admissions still waiting closed:
 * waiting-orders.ts closeWaitingWindows), and the pool settled. Their orders are cancelled and
 * their units go back to stock afterwards, in bounded transactions (waiting-orders.ts), by the
 * caller and, whatever it leaves, by the lifecycle's window sweep: one transaction for all of
 * them held the sale, its variant's stock row (every checkout and sale of the variant waited,
 * past the statement timeout) and, on PGlite, the whole process for a minute at 2,000 orders.
 * Orders already paying or paid are not touched (staff cancel those like any order). Cancelling
 * again answers the campaign.
 */
export async function cancelCampaign(
  deps: FlashSalesDeps,
  tenantId: string,
  id: string,
  actor: string,
  reason: string | undefined,
  meta: EventMeta,
  closeWaiting: (trx: FlashSalesTrx, campaign: Campaign) => Promise<number>,
): Promise<Campaign> {
  const cancelled = await withTenant(deps.db, tenantId, async (anyTrx) => {
    const trx = anyTrx as FlashSalesTrx;
    const current = await getCampaign(trx, id, true);
    if (current.cancelledAt) return current;
    // A sale its end settled has ended: its admitted orders keep their payment windows.
    const now = new Date();
    if (lockedStatusOf(current, now) === 'ended') {
      throw new AppError('NOT_LIVE', `flash sale ${current.id} has ended; it can no longer be cancelled`);
    }
    await trx
      .updateTable('flash_sales.campaigns')
      .set({ cancelled_at: now, cancel_reason: reason ?? null, updated_at: now })
      .where('id', '=', current.id)
      .execute();
    const marked = await getCampaign(trx, current.id);
    await closeWaiting(trx, marked);
    return settleIn(deps, trx, tenantId, await getCampaign(trx, current.id), actor, meta);
  });
  await deps.gate.drop(cancelled.id);
  return cancelled;
}

/**
 * In trx, with the campaign's row locked: the pool goes back to available stock (what it still
 * holds: units not admitted, and those given back), the campaign is marked settled and
 * mercato.flash-sale.ended announced. Orders admitted keep their own reservations.
 */
export async function settleIn(
  deps: FlashSalesDeps,
  trx: FlashSalesTrx,
  tenantId: string,
  campaign: Campaign,
  actor: string,
  meta?: EventMeta,
): Promise<Campaign> {
  if (campaign.settledAt) return campaign;
  const now = new Date();
  await deps.inventory.within(trx).release(tenantId, poolKey(campaign.id), actor, meta);
  const row = await trx
    .updateTable('flash_sales.campaigns')
    .set({
      settled_at: now,
      announced: JSON.stringify({ ...campaign.announced, ended: now.toISOString() }),
      updated_at: now,
    })
    .where('id', '=', campaign.id)
    .returningAll()
    .executeTakeFirstOrThrow();
  const settled = toCampaign(row);
  await publishCampaignEvents(deps.events, trx, tenantId, [campaignEvent('ended', settled, now)], meta);
  return settled;
}
