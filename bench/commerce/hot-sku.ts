/**
 * Part `hot` of `npm run bench:commerce`: 64 clients reserving one unit each of one variant over
 * HTTP, every request with a key of its own, until it sells out (the first 409); then what was
 * sold is checked against the stock: the item's reserved count, the reservations and the ledger
 * must all say exactly the stock. The same load on the floor: one plain
 * `UPDATE … SET reserved = reserved + 1 WHERE id = $1 AND on_hand - reserved >= 1` per request.
 */
import { randomUUID } from 'node:crypto';
import type { Api } from './api.ts';
import { type LoadResult, measure } from './load.ts';
import { HOT_STOCK, sql, WARMUP } from './setup.ts';

export const HOT_CONNECTIONS = 64;

export type HotRow = {
  mercato: LoadResult;
  floor: LoadResult;
  stock: number;
  /** 2xx answers of the measured run. */
  accepted: number;
  /** What the item, the reservations and the ledger say was reserved. */
  itemReserved: number;
  reservations: number;
  reservationUnits: number;
  ledgerReserved: number;
  oversell: number;
  floorAccepted: number;
  floorReserved: number;
};

type Item = { id: string; variantId: string; onHand: number; reserved: number; available: number };

/** The variant's inventory item at the default location, with on hand set to `onHand`. */
export async function stockVariant(api: Api, variantId: string, onHand: number): Promise<Item> {
  let item: Item | undefined;
  // The inventory module makes a zero-stock item for every new variant (from product events).
  for (let tries = 0; tries < 50 && !item; tries++) {
    const page = await api.must<{ items: Item[] }>('GET', `/api/v1/inventory?variantId=${variantId}`);
    item = page.items[0];
    if (!item) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!item) return api.must<Item>('POST', '/api/v1/inventory', { variantId, onHand });
  return api.must<Item>('PUT', `/api/v1/inventory/${item.id}/stock`, { set: onHand, reason: 'bench stock' });
}

/** Reservations of one unit of `variantId`, each with a new key, until the first 409. */
const reserveLoad = (api: Api, name: string, path: string, body: (key: string) => string) => ({
  name,
  base: api.base,
  connections: HOT_CONNECTIONS,
  duration: 120,
  next: () => ({
    method: 'POST',
    path,
    headers: {
      'content-type': 'application/json',
      ...(api.token ? { authorization: `Bearer ${api.token}` } : {}),
    },
    body: body(randomUUID()),
  }),
  until: (status: number) => status === 409,
});

/**
 * The first of `variantIds` never reserved: a database reused (BENCH_REUSE_DB=1) keeps the
 * reservations and ledger of earlier runs, which the checks after the run would count.
 */
async function unreserved(tenantId: string, variantIds: string[]): Promise<string> {
  const rows = await sql<{ variant_id: string }>(
    `select v.id as variant_id from unnest($2::uuid[]) with ordinality as v(id, n)
      where not exists (select 1 from inventory.ledger l join inventory.items i on i.id = l.item_id
        where i.tenant_id = $1 and i.variant_id = v.id and l.kind = 'reserve')
      order by v.n limit 1`,
    [tenantId, variantIds],
  );
  if (!rows[0]) throw new Error('every candidate variant was reserved by an earlier run: import again');
  return rows[0].variant_id;
}

export async function runHotSku(
  api: Api,
  floor: Api,
  tenantId: string,
  candidates: string[],
  warmVariant: string,
): Promise<HotRow> {
  const hotVariant = await unreserved(tenantId, candidates);
  const mercatoBody = (variantId: string) => (key: string) =>
    JSON.stringify({ key: `bench-${key}`, lines: [{ variantId, quantity: 1 }] });
  // Warm-up on another variant, so the measured one starts from its full stock.
  await stockVariant(api, warmVariant, 1_000_000);
  await measure({
    ...reserveLoad(api, 'hot SKU warm-up', '/api/v1/inventory/reserve', mercatoBody(warmVariant)),
    duration: WARMUP,
  });
  // This PostgreSQL runs with autovacuum off. The reservations tables were empty when the bench
  // last analyzed; autovacuum would have analyzed them after the warm-up's first thousands of
  // rows (a running shop's tables are never that empty). Without it every connection keeps the
  // plans it made for empty tables, such as a sequential scan for each line's foreign-key check.
  await sql('analyze inventory.reservations, inventory.reservation_lines, inventory.ledger, inventory.items');
  const item = await stockVariant(api, hotVariant, HOT_STOCK);
  const mercato = await measure(
    reserveLoad(
      api,
      'hot SKU (POST /api/v1/inventory/reserve)',
      '/api/v1/inventory/reserve',
      mercatoBody(hotVariant),
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
  const after = await api.must<Item>('GET', `/api/v1/inventory/${item.id}`);
  const [reservations] = await sql<{ n: string; units: string }>(
    `select count(distinct r.id) as n, coalesce(sum(l.quantity), 0) as units
       from inventory.reservation_lines l join inventory.reservations r on r.id = l.reservation_id
      where l.tenant_id = $1 and l.item_id = $2 and r.status = 'active'`,
    [tenantId, item.id],
  );
  const [ledger] = await sql<{ reserved: string }>(
    `select coalesce(sum(reserved_delta), 0) as reserved from inventory.ledger
      where tenant_id = $1 and item_id = $2 and kind = 'reserve'`,
    [tenantId, item.id],
  );
  const accepted = Object.entries(mercato.statuses).reduce(
    (n, [code, count]) => n + (code.startsWith('2') ? count : 0),
    0,
  );

  const floorBody = (id: string) => () => JSON.stringify({ id });
  const warmId = randomUUID();
  const hotId = randomUUID();
  await floor.must('POST', '/items', { id: warmId, onHand: 1_000_000 });
  await measure({
    ...reserveLoad(floor, 'hot SKU floor warm-up', '/reserve', floorBody(warmId)),
    duration: WARMUP,
  });
  await floor.must('POST', '/items', { id: hotId, onHand: HOT_STOCK });
  const floorRun = await measure(
    reserveLoad(floor, 'hot SKU floor (plain UPDATE)', '/reserve', floorBody(hotId)),
  );
  const floorItem = await floor.must<{ reserved: number }>('GET', `/items/${hotId}`);
  const floorAccepted = Object.entries(floorRun.statuses).reduce(
    (n, [code, count]) => n + (code.startsWith('2') ? count : 0),
    0,
  );
  const itemReserved = after.reserved;
  return {
    mercato,
    floor: floorRun,
    stock: HOT_STOCK,
    accepted,
    itemReserved,
    reservations: Number(reservations!.n),
    reservationUnits: Number(reservations!.units),
    ledgerReserved: Number(ledger!.reserved),
    oversell:
      Math.max(accepted, itemReserved, Number(reservations!.units), Number(ledger!.reserved)) - HOT_STOCK,
    floorAccepted,
    floorReserved: floorItem.reserved,
  };
}
