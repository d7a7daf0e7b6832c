import type { Selectable } from 'kysely';
import { AppError, cursorId, cursorText, encodeCursor } from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import type { Announced, CampaignsTable, FlashSalesTrx, Priority } from './tables.ts';

export type CampaignStatus = 'scheduled' | 'live' | 'sold_out' | 'ended' | 'cancelled';

/** A campaign as routes and the admission path see it. */
export type Campaign = {
  id: string;
  tenantId: string;
  name: string;
  variantId: string;
  productId: string;
  sku: string;
  title: string;
  variantTitle: string;
  currency: string;
  salePrice: number;
  units: number;
  perCustomerLimit: number;
  paymentWindowMinutes: number;
  priority: Priority;
  startsAt: Date;
  endsAt: Date;
  admitted: number;
  sold: number;
  released: number;
  cancelledAt: Date | null;
  cancelReason: string | null;
  settledAt: Date | null;
  announced: Announced;
  createdAt: Date;
  updatedAt: Date;
};

/** Seconds the gate keeps a campaign's state: to its end and its payment window, and a margin. */
export const gateTtl = (c: Pick<Campaign, 'endsAt' | 'paymentWindowMinutes'>, now = Date.now()) =>
  Math.max(60, Math.ceil((c.endsAt.getTime() - now) / 1000) + c.paymentWindowMinutes * 60 + 3600);

/** The campaign's pool: the inventory reservation holding its unsold units. */
export const poolKey = (campaignId: string) => `flash-sale:${campaignId}`;

const date = (v: Date | string | null) => (v === null ? null : new Date(v));
const parsed = <T>(v: unknown): T => (typeof v === 'string' ? JSON.parse(v) : v) as T;

export function toCampaign(row: Selectable<CampaignsTable>): Campaign {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    variantId: row.variant_id,
    productId: row.product_id,
    sku: row.sku,
    title: row.title,
    variantTitle: row.variant_title,
    currency: row.currency,
    salePrice: Number(row.sale_price),
    units: row.units,
    perCustomerLimit: row.per_customer_limit,
    paymentWindowMinutes: row.payment_window_minutes,
    priority: row.priority,
    startsAt: new Date(row.starts_at),
    endsAt: new Date(row.ends_at),
    admitted: row.admitted,
    sold: row.sold,
    released: row.released,
    cancelledAt: date(row.cancelled_at),
    cancelReason: row.cancel_reason,
    settledAt: date(row.settled_at),
    announced: parsed<Announced>(row.announced) ?? {},
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** Where a campaign stands at `now`: cancelled and ended first, then by its times and units. */
export function statusOf(
  c: Pick<Campaign, 'cancelledAt' | 'startsAt' | 'endsAt' | 'admitted' | 'units'>,
  now = new Date(),
): CampaignStatus {
  const phase = phaseOf(c, now);
  return phase === 'live' && c.admitted >= c.units ? 'sold_out' : phase;
}

/**
 * Where a campaign stands, read from its locked row at `now` (take it once the lock is granted):
 * what it records overrules this process's clock, which may lag the one that settled or started it.
 * Settled (by its end) is ended; a start announced (by the lifecycle, or with a first admission) is
 * started. Where a change, a cancel or an admission batch decides.
 */
export function lockedStatusOf(
  c: Pick<Campaign, 'cancelledAt' | 'settledAt' | 'announced' | 'startsAt' | 'endsAt' | 'admitted' | 'units'>,
  now = new Date(),
): CampaignStatus {
  if (c.settledAt && !c.cancelledAt) return 'ended';
  const status = statusOf(c, now);
  return status === 'scheduled' && c.announced.started ? 'live' : status;
}

/**
 * Where a campaign stands at `now` by its times alone (live, sold out or not): what admission
 * checks before the gate, which decides sold out (a sale whose units came down to 0, its pool
 * found empty, is sold out, not "not live").
 */
export function phaseOf(
  c: Pick<Campaign, 'cancelledAt' | 'startsAt' | 'endsAt'>,
  now = new Date(),
): Exclude<CampaignStatus, 'sold_out'> {
  if (c.cancelledAt) return 'cancelled';
  if (now >= c.endsAt) return 'ended';
  if (now < c.startsAt) return 'scheduled';
  return 'live';
}

/** The campaign as the API shows it. */
export function campaignView(c: Campaign, now = new Date()) {
  return {
    id: c.id,
    name: c.name,
    variantId: c.variantId,
    productId: c.productId,
    sku: c.sku,
    title: c.title,
    variantTitle: c.variantTitle,
    currency: c.currency,
    salePrice: c.salePrice,
    units: c.units,
    perCustomerLimit: c.perCustomerLimit,
    paymentWindowMinutes: c.paymentWindowMinutes,
    priority: c.priority,
    startsAt: c.startsAt.toISOString(),
    endsAt: c.endsAt.toISOString(),
    status: statusOf(c, now),
    admitted: c.admitted,
    sold: c.sold,
    released: c.released,
    remaining: c.units - c.admitted,
    cancelledAt: c.cancelledAt?.toISOString() ?? null,
    cancelReason: c.cancelReason,
    settledAt: c.settledAt?.toISOString() ?? null,
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  };
}

const notFound = (id: string) => new AppError('NOT_FOUND', `flash sale ${id} not found`);

/** One campaign of the tenant (trx is the tenant's); `lock` takes its row lock. 404 when absent. */
export async function getCampaign(trx: FlashSalesTrx, id: string, lock = false): Promise<Campaign> {
  if (!isUuid(id)) throw notFound(id);
  let query = trx.selectFrom('flash_sales.campaigns').selectAll().where('id', '=', id.toLowerCase());
  if (lock) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) throw notFound(id);
  return toCampaign(row);
}

/** The tenant's campaigns, newest first; `status` filters on the status as of now. */
export async function listCampaigns(
  trx: FlashSalesTrx,
  options: { limit: number; after: string | undefined; status: CampaignStatus | undefined },
): Promise<{ items: Campaign[]; nextCursor: string | null }> {
  const now = new Date();
  let query = trx
    .selectFrom('flash_sales.campaigns')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(options.limit + 1);
  if (options.after) query = query.where('id', '<', options.after);
  switch (options.status) {
    case 'cancelled':
      query = query.where('cancelled_at', 'is not', null);
      break;
    case 'ended':
      query = query.where('cancelled_at', 'is', null).where('ends_at', '<=', now);
      break;
    case 'scheduled':
      query = query.where('cancelled_at', 'is', null).where('starts_at', '>', now);
      break;
    case 'live':
    case 'sold_out':
      query = query
        .where('cancelled_at', 'is', null)
        .where('starts_at', '<=', now)
        .where('ends_at', '>', now)
        .where((eb) =>
          options.status === 'live'
            ? eb('admitted', '<', eb.ref('units'))
            : eb('admitted', '>=', eb.ref('units')),
        );
      break;
  }
  const rows = await query.execute();
  const items = rows.slice(0, options.limit).map(toCampaign);
  const more = rows.length > options.limit;
  return { items, nextCursor: more ? encodeCursor(items[items.length - 1]!.id) : null };
}

/** Decodes a list cursor (400 INVALID_CURSOR for one we did not issue). */
export const readCursor = (cursor: string | undefined) =>
  cursor === undefined ? undefined : cursorId(cursorText(cursor));
