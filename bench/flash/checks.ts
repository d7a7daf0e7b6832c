/**
 * What each side holds after its sale, beside the answers its customers got. Mercato, through SQL
 * on its database: the admissions (units against the allotment, customers over the limit), every
 * 202's order in `orders.orders`, and the variant's inventory item and reservations (the campaign's
 * pool plus the orders' reservations must be exactly the units, counted once). The textbook peer,
 * through its Redis keys: units left and units per customer. Oversell is the most any of them
 * says was sold, less the units.
 */
import type { Redis } from 'ioredis';
import { sql } from '../commerce/setup.ts';
import type { SaleRun } from './client.ts';
import type { Sale } from './setup.ts';

export type Check = {
  /** Units sold beyond the allotment (0 when none). */
  oversell: number;
  /** Customers holding more than the limit. */
  overLimit: number;
  /** Everything held agrees with the answers and the allotment. */
  agree: boolean;
  /** Orders created per second over the selling phase (Mercato only). */
  ordersPerSecond?: number;
  lines: string[];
};

const n = (v: unknown) => Number(v ?? 0);

/** Mercato's record of `sale` after `run` (the warm-up sale is another campaign, not counted). */
export async function checkMercato(sale: Sale, limit: number, run: SaleRun): Promise<Check> {
  const orderIds = run.admitted.map((a) => a.orderId).filter(Boolean);
  const [admissions] = await sql<{ n: string; units: string; customers: string; released: string }>(
    `select count(*) filter (where status <> 'released') as n,
            coalesce(sum(quantity) filter (where status <> 'released'), 0) as units,
            count(distinct customer_id) filter (where status <> 'released') as customers,
            count(*) filter (where status = 'released') as released
       from flash_sales.admissions where campaign_id = $1`,
    [sale.id],
  );
  const [overLimitRow] = await sql<{ n: string }>(
    `select count(*) as n from (select customer_id from flash_sales.admissions
       where campaign_id = $1 and status <> 'released' group by customer_id having sum(quantity) > $2) x`,
    [sale.id, limit],
  );
  const [campaign] = await sql<{ admitted: number; units: number }>(
    'select admitted, units from flash_sales.campaigns where id = $1',
    [sale.id],
  );
  const [missing] = await sql<{ n: string }>(
    'select count(*) as n from unnest($1::uuid[]) a(id) where not exists (select 1 from orders.orders o where o.id = a.id)',
    [orderIds],
  );
  const [orphans] = await sql<{ n: string }>(
    `select count(*) as n from flash_sales.admissions a
      where a.campaign_id = $1 and not exists (select 1 from orders.orders o where o.id = a.order_id)`,
    [sale.id],
  );
  const [unanswered] = await sql<{ n: string }>(
    `select count(*) as n from flash_sales.admissions a
      where a.campaign_id = $1 and a.status <> 'released' and not (a.order_id = any($2::uuid[]))`,
    [sale.id, orderIds],
  );
  const [orders] = await sql<{ n: string; seconds: number | null }>(
    `select count(*) as n, extract(epoch from max(o.created_at) - min(o.created_at))::float8 as seconds
       from orders.orders o join flash_sales.admissions a on a.order_id = o.id where a.campaign_id = $1`,
    [sale.id],
  );
  const [item] = await sql<{ on_hand: number; reserved: number; available: number }>(
    'select on_hand, reserved, available from inventory.items where variant_id = $1',
    [sale.variantId],
  );
  const [held] = await sql<{ pool: string; orders: string; order_reservations: string; other: string }>(
    `select coalesce(sum(l.quantity) filter (where r.key = $2), 0) as pool,
            coalesce(sum(l.quantity) filter (where r.key like 'order-%'), 0) as orders,
            count(*) filter (where r.key like 'order-%') as order_reservations,
            coalesce(sum(l.quantity) filter (where r.key <> $2 and r.key not like 'order-%'), 0) as other
       from inventory.reservation_lines l join inventory.reservations r on r.id = l.reservation_id
      where l.variant_id = $1 and r.status = 'active'`,
    [sale.variantId, `flash-sale:${sale.id}`],
  );
  const answered202 = run.admitted.length;
  const admittedUnits = n(admissions!.units);
  const overLimit = n(overLimitRow!.n);
  const sold = Math.max(answered202, admittedUnits, n(campaign!.admitted), n(held!.orders));
  const oversell = Math.max(0, sold - sale.units);
  const pool = n(held!.pool);
  const heldByOrders = n(held!.orders);
  const inventoryAgrees =
    pool + heldByOrders === sale.units &&
    n(held!.other) === 0 &&
    n(item!.reserved) === sale.units &&
    n(item!.on_hand) === sale.units &&
    heldByOrders === admittedUnits;
  const agree =
    oversell === 0 &&
    overLimit === 0 &&
    n(missing!.n) === 0 &&
    n(orphans!.n) === 0 &&
    n(unanswered!.n) === 0 &&
    answered202 === n(admissions!.n) &&
    n(campaign!.admitted) === admittedUnits &&
    inventoryAgrees;
  const sellingSeconds = run.selling?.seconds ?? Number.NaN;
  const ordersPerSecond = Math.round(n(orders!.n) / sellingSeconds);
  return {
    oversell,
    overLimit,
    agree,
    ordersPerSecond,
    lines: [
      `Mercato: ${answered202} attempts answered 202; the record holds ${admissions!.n} admissions (${admittedUnits} units,` +
        ` ${admissions!.customers} customers, ${admissions!.released} released), the campaign counts ${campaign!.admitted}` +
        ` admitted of ${campaign!.units}; customers over the limit of ${limit}: ${overLimit}; 202 order ids with no order` +
        ` in orders.orders: ${missing!.n}; admissions without an order: ${orphans!.n}; admissions no 202 announced:` +
        ` ${unanswered!.n}. Inventory item: on hand ${item!.on_hand}, reserved ${item!.reserved}, available` +
        ` ${item!.available}; the campaign's pool holds ${pool} and ${held!.order_reservations} order reservations hold` +
        ` ${heldByOrders} (together ${pool + heldByOrders}, other reservations ${held!.other}). Oversell ${oversell}:` +
        ` ${agree ? 'they agree' : 'they DISAGREE'}.`,
      `Mercato's ${orders!.n} orders were created within ${Math.round((orders!.seconds ?? 0) * 100) / 100} s of each` +
        ` other (first to last created_at), ${ordersPerSecond}/s over the selling phase's ${sellingSeconds} s.`,
    ],
  };
}

/** The textbook peer's Redis keys for `saleId` after `run`. */
export async function checkTextbook(
  redis: Redis,
  prefix: string,
  saleId: string,
  units: number,
  limit: number,
  run: SaleRun,
): Promise<Check> {
  const base = `${prefix}{${saleId}}`;
  const remaining = Number((await redis.get(`${base}:remaining`)) ?? Number.NaN);
  const perCustomer = (await redis.hvals(`${base}:customers`)).map(Number);
  const counted = perCustomer.reduce((a, b) => a + b, 0);
  const overLimit = perCustomer.filter((k) => k > limit).length;
  const answered202 = run.admitted.length;
  const distinct = new Set(run.admitted.map((a) => a.buyer)).size;
  const sold = Math.max(answered202, counted, units - remaining);
  const oversell = Math.max(0, sold - units);
  const agree =
    oversell === 0 &&
    overLimit === 0 &&
    answered202 === counted &&
    counted === units - remaining &&
    distinct === answered202;
  return {
    oversell,
    overLimit,
    agree,
    lines: [
      `Textbook: ${answered202} attempts answered 202 (${distinct} customers); Redis says ${remaining} units left and` +
        ` ${counted} units held by ${perCustomer.length} customers, ${overLimit} of them over the limit. Oversell ${oversell}:` +
        ` ${agree ? 'they agree' : 'they DISAGREE'} (nothing durable to check: no order exists anywhere but in the counter).`,
    ],
  };
}
