import { CompiledQuery, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../platform/db/index.ts';
import { createUuidV7 } from '../platform/uuidv7.ts';
import type { Order } from './index.ts';
import { type OrderFilters, pageQuery } from './order-list.ts';
import {
  createShop,
  newOrder,
  newUser,
  type OrdersTestApp,
  type Shop,
  send,
  startOrdersApp,
  type TestUser,
} from './orders-test-fixtures.ts';
import type { OrdersTrx } from './tables.ts';

const HOUR = 3_600_000;
const COUNT = 600;

let t: OrdersTestApp;
let shop: Shop;
let buyer: TestUser;
/** Order i was made at base + 2 h × i: its id minted then, its created_at then. */
let orders: Order[];
let base: number;
const at = (i: number) => new Date(base + 2 * HOUR * i).toISOString();

beforeAll(async () => {
  t = await startOrdersApp();
  shop = await createShop(t, 'orderrange');
  buyer = await newUser(t, shop);
  base = Date.now() - 2 * HOUR * COUNT;
  const inputs = Array.from({ length: COUNT }, (_, i) =>
    newOrder({ id: createUuidV7(() => base + 2 * HOUR * i)(), customerId: i % 3 === 0 ? buyer.id : null }),
  );
  const numbers = inputs.map((_, i) => 1001 + i);
  orders = await withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
    const made = await t.orders.createMany(trx, shop.id, inputs, numbers);
    // As if each had been inserted at its time (created_at is its transaction's start).
    await sql`update orders.orders set created_at = to_timestamp(
      ('x' || lpad(replace(left(id::text, 13), '-', ''), 16, '0'))::bit(64)::bigint / 1000.0)
      where tenant_id = ${shop.id}`.execute(trx);
    return made;
  });
  await sql`analyze orders.orders`.execute(t.ctx.db.kysely);
}, 120_000);
afterAll(() => t.close());

/** The rows the page's plan read from the orders' indexes (kept or removed by a filter). */
async function rowsRead(filters: OrderFilters): Promise<number> {
  return withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
    const query = pageQuery(trx as OrdersTrx, shop.id, filters, { limit: 20, after: undefined }).compile();
    const { rows } = await trx.executeQuery<{ 'QUERY PLAN': unknown }>(
      CompiledQuery.raw(`explain (analyze, format json) ${query.sql}`, [...query.parameters]),
    );
    const raw = rows[0]!['QUERY PLAN'];
    const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Array<{ Plan: PlanNode }>;
    let read = 0;
    const walk = (node: PlanNode) => {
      if (node['Relation Name'] === 'orders')
        read += (node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0);
      for (const child of node.Plans ?? []) walk(child);
    };
    walk(plan[0]!.Plan);
    return read;
  });
}
type PlanNode = {
  'Relation Name'?: string;
  'Actual Rows'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
};

describe('GET /orders by creation time', () => {
  it('lists the orders created in the range, newest first, over HTTP', async () => {
    const query = `createdFrom=${encodeURIComponent(at(100))}&createdTo=${encodeURIComponent(at(110))}`;
    const response = await send(t.app, 'GET', `/api/v1/orders?${query}`, shop.staff);
    expect(response.statusCode).toBe(200);
    const ids = response.json<{ items: { id: string }[] }>().items.map((o) => o.id);
    expect(ids).toEqual(
      orders
        .slice(100, 110)
        .map((o) => o.id)
        .reverse(),
    );
    const old = await send(
      t.app,
      'GET',
      `/api/v1/orders?createdTo=${encodeURIComponent(at(100))}&limit=3`,
      shop.staff,
    );
    expect(old.json<{ items: { id: string }[] }>().items.map((o) => o.id)).toEqual(
      orders
        .slice(97, 100)
        .map((o) => o.id)
        .reverse(),
    );
  });

  it('still finds an order whose id was minted up to the slack before or after its created_at', async () => {
    const s = await createShop(t, 'orderslack');
    const made = base + HOUR;
    const [late, early] = await withTenant(t.ctx.db.kysely, s.id, async (trx) => {
      const both = await t.orders.createMany(
        trx,
        s.id,
        [
          newOrder({ id: createUuidV7(() => made + HOUR / 2)() }),
          newOrder({ id: createUuidV7(() => made - HOUR / 2)() }),
        ],
        [1001, 1002],
      );
      await sql`update orders.orders set created_at = ${new Date(made).toISOString()} where tenant_id = ${s.id}`.execute(
        trx,
      );
      return both;
    });
    const list = async (query: string) =>
      (await send(t.app, 'GET', `/api/v1/orders?${query}`, s.staff))
        .json<{ items: { id: string }[] }>()
        .items.map((o) => o.id);
    const after = encodeURIComponent(new Date(made + 1).toISOString());
    const from = encodeURIComponent(new Date(made).toISOString());
    expect(await list(`createdTo=${after}`)).toEqual([late!.id, early!.id]);
    expect(await list(`createdFrom=${from}`)).toEqual([late!.id, early!.id]);
    expect(await list(`createdFrom=${after}`)).toEqual([]);
  });

  it('reads about a page of rows for a range far from the newest orders, not every order newer than it', async () => {
    // A page is 21 rows; the orders within the hour's slack at either end add one each; a third of
    // the orders are the buyer's, so a page of theirs may read three times as many.
    const cases: Array<[OrderFilters, number]> = [
      [{ createdTo: at(300) }, 23],
      [{ createdFrom: at(100), createdTo: at(110) }, 23],
      [{ createdFrom: at(100), createdTo: at(101) }, 23],
      [{ status: 'created', createdTo: at(300) }, 23],
      [{ customerId: buyer.id, createdTo: at(300) }, 3 * 21 + 2],
      [{ createdFrom: at(COUNT + 10) }, 23],
    ];
    for (const [filters, most] of cases) {
      expect(await rowsRead(filters), JSON.stringify(filters)).toBeLessThanOrEqual(most);
    }
  });

  it('refuses a time whose fraction of a second is too long for PostgreSQL with 400, not 500', async () => {
    const long = `2024-01-01T00:00:00.${'1'.repeat(200)}Z`;
    for (const url of [
      `/orders?createdFrom=${long}`,
      `/orders?createdTo=${long}`,
      `/orders/user/${buyer.id}?createdTo=${long}`,
    ]) {
      const response = await send(t.app, 'GET', `/api/v1${url}`, shop.staff);
      expect(response.statusCode, url).toBe(400);
      expect(response.headers['content-type'], url).toContain('application/problem+json');
      expect(response.json().code, url).toBe('VALIDATION_FAILED');
    }
    const nanos = await send(
      t.app,
      'GET',
      `/api/v1/orders?createdTo=2024-01-01T00:00:00.123456789%2B14:00`,
      shop.staff,
    );
    expect(nanos.statusCode).toBe(200);
  });
});
