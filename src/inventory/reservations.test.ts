import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../identity/users/user-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { testDatabaseKind } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  createShop,
  createStock,
  type InventoryTestApp,
  inventoryEvents,
  type Shop,
  startInventoryApp,
  until,
} from './inventory-test-fixtures.ts';
import { createReservationBatcher } from './reservation-batcher.ts';
import { linesHash } from './reservation-ops.ts';
import { lockItems } from './reservation-store.ts';
import type { InventoryDb } from './tables.ts';
import type { InventoryItem, Reservation } from './views.ts';

let t: InventoryTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startInventoryApp({}, { sweeper: { intervalMs: 200 } });
  shop = await createShop(t, 'stock-shop');
});
afterAll(async () => {
  await t.close();
});

const reserve = (body: Record<string, unknown>, headers = shop.staff) =>
  send(t.app, 'POST', '/api/v1/inventory/reserve', headers, body);
const item2 = async (s: Shop, id: string) =>
  (await send(t.app, 'GET', `/api/v1/inventory/${id}`, s.staff)).json<InventoryItem>();
const item = async (id: string) =>
  (await send(t.app, 'GET', `/api/v1/inventory/${id}`, shop.staff)).json<InventoryItem>();

describe('the hot SKU', () => {
  it("gives each reservation's event the correlation id of its own request, though they share a batch", async () => {
    // A shop of its own: the other tests count their tenant's events.
    const traced = await createShop(t, 'traced-shop');
    const stock = await createStock(t, traced, { onHand: 40 });
    const before = t.inventory.batcherStats();
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        reserve(
          { key: `traced-${i}`, lines: [{ variantId: stock.variantId, quantity: 1 }] },
          { ...traced.staff, 'x-correlation-id': `request-${i}` },
        ),
      ),
    );
    expect(answers.every((a) => a.statusCode === 201)).toBe(true);
    expect(t.inventory.batcherStats().batches - before.batches).toBeLessThan(40);
    const rows = await sql<{ subject: string; correlation: string | null }>`
      select payload->>'key' as subject, headers->>'ce-correlationid' as correlation
      from wal.messages
      where tenant_id = ${traced.id} and namespace = 'inventory-events'
        and headers->>'ce-type' = 'mercato.inventory.reserved' and payload->>'key' like 'traced-%'`.execute(
      t.ctx.db.kysely,
    );
    expect(rows.rows).toHaveLength(40);
    for (const row of rows.rows) expect(row.correlation).toBe(row.subject.replace('traced-', 'request-'));
  });

  it('never oversells: 200 concurrent reservations against 50 in stock, exactly 50 succeed', async () => {
    const stock = await createStock(t, shop, { onHand: 50 });
    const before = t.inventory.batcherStats();
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        reserve({ key: `hot-${i}`, lines: [{ variantId: stock.variantId, quantity: 1 }] }),
      ),
    );
    const ok = answers.filter((a) => a.statusCode === 201);
    const refused = answers.filter((a) => a.statusCode === 409);
    expect(ok).toHaveLength(50);
    expect(refused).toHaveLength(150);
    for (const r of refused) {
      expect(r.json()).toMatchObject({
        code: 'INSUFFICIENT_STOCK',
        lines: [{ variantId: stock.variantId, requested: 1, available: 0 }],
      });
    }
    expect(await item(stock.id)).toMatchObject({ onHand: 50, reserved: 50, available: 0 });
    // they shared transactions instead of queueing on the row lock one by one
    const after = t.inventory.batcherStats();
    expect(after.ops - before.ops).toBe(200);
    expect(after.batches - before.batches).toBeLessThan(200);
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
    const metrics = await t.ctx.metrics.registry.metrics();
    expect(metrics).toMatch(
      /mercato_inventory_reservation_ops_total\{kind="reserve",outcome="INSUFFICIENT_STOCK"\} 150/,
    );
    expect(metrics).toMatch(/mercato_inventory_reservation_batch_size_count \d+/);
    const ledger = await send(t.app, 'GET', `/api/v1/inventory/${stock.id}/ledger?limit=100`, shop.staff);
    const entries = ledger.json<{ items: { kind: string; quantity: number }[] }>().items;
    expect(entries.filter((e) => e.kind === 'reserve')).toHaveLength(50);
    expect(await inventoryEvents(t, shop.id, 'mercato.inventory.reserved')).toHaveLength(50);
  });

  it('answers an idempotent replay inside one batch with the same reservation', async () => {
    const stock = await createStock(t, shop, { onHand: 10 });
    const body = { key: `same-${uuidv7()}`, lines: [{ variantId: stock.variantId, quantity: 3 }] };
    const answers = await Promise.all(Array.from({ length: 5 }, () => reserve(body)));
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 200, 200, 200, 201]);
    expect(new Set(answers.map((a) => a.json<Reservation>().createdAt)).size).toBe(1);
    expect(await item(stock.id)).toMatchObject({ reserved: 3, available: 7 });
  });
});

describe('stock changes racing reservations', () => {
  it('neither deadlocks nor drifts: reservations, releases and stock adjustments at once', async () => {
    const stock = await createStock(t, shop, { onHand: 30 });
    const keys = Array.from({ length: 60 }, (_, i) => `race-${stock.id}-${i}`);
    const answers = await Promise.all([
      ...keys.map((key) => reserve({ key, lines: [{ variantId: stock.variantId, quantity: 1 }] })),
      ...Array.from({ length: 10 }, () =>
        send(t.app, 'PUT', `/api/v1/inventory/${stock.id}/stock`, shop.staff, {
          adjust: 1,
          kind: 'receive',
          reason: 'delivery',
        }),
      ),
      ...keys
        .slice(0, 20)
        .map((key) => send(t.app, 'POST', '/api/v1/inventory/release', shop.staff, { key })),
    ]);
    for (const answer of answers) expect(answer.statusCode, answer.body).toBeLessThan(500);
    const reserved = answers.slice(0, 60).filter((a) => a.statusCode === 201).length;
    const final = await item(stock.id);
    expect(final.onHand).toBe(40);
    expect(reserved).toBeGreaterThanOrEqual(30);
    expect(final.reserved).toBeLessThanOrEqual(final.onHand);
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });
});

describe('reservations', () => {
  it('reserve several lines all or nothing', async () => {
    const a = await createStock(t, shop, { onHand: 5 });
    const b = await createStock(t, shop, { onHand: 1 });
    const refused = await reserve({
      key: `multi-${uuidv7()}`,
      lines: [
        { variantId: a.variantId, quantity: 2 },
        { variantId: b.variantId, quantity: 2 },
      ],
    });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({
      code: 'INSUFFICIENT_STOCK',
      lines: [
        { variantId: a.variantId, requested: 2, available: 5 },
        { variantId: b.variantId, requested: 2, available: 1 },
      ].sort((x, y) => (x.variantId < y.variantId ? -1 : 1)),
    });
    expect(await item(a.id)).toMatchObject({ reserved: 0, available: 5 });
    const ok = await reserve({
      key: `multi-${uuidv7()}`,
      lines: [
        { variantId: a.variantId, quantity: 2 },
        { variantId: b.variantId, quantity: 1 },
      ],
    });
    expect(ok.statusCode).toBe(201);
    expect(await item(a.id)).toMatchObject({ reserved: 2, available: 3 });
    expect(await item(b.id)).toMatchObject({ reserved: 1, available: 0 });
  });

  it('replays a key with the same lines and refuses it with other lines', async () => {
    const stock = await createStock(t, shop, { onHand: 5 });
    const key = `replay-${uuidv7()}`;
    const first = await reserve({ key, lines: [{ variantId: stock.variantId, quantity: 2 }] });
    expect(first.statusCode).toBe(201);
    const again = await reserve({ key, lines: [{ variantId: stock.variantId, quantity: 2 }] });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(first.json());
    const other = await reserve({ key, lines: [{ variantId: stock.variantId, quantity: 3 }] });
    expect(other.statusCode).toBe(409);
    expect(other.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await item(stock.id)).toMatchObject({ reserved: 2 });
  });

  it('commit lowers on hand; commit and release are idempotent; release after commit is refused', async () => {
    const stock = await createStock(t, shop, { onHand: 8 });
    const key = `sale-${uuidv7()}`;
    await reserve({ key, lines: [{ variantId: stock.variantId, quantity: 3 }], reference: 'order-1' });
    const committed = await send(t.app, 'POST', '/api/v1/inventory/commit', shop.staff, { key });
    expect(committed.statusCode).toBe(200);
    expect(committed.json()).toMatchObject({ status: 'committed', reference: 'order-1' });
    expect(await item(stock.id)).toMatchObject({ onHand: 5, reserved: 0, available: 5 });
    expect((await send(t.app, 'POST', '/api/v1/inventory/commit', shop.staff, { key })).statusCode).toBe(200);
    const release = await send(t.app, 'POST', '/api/v1/inventory/release', shop.staff, { key });
    expect(release.statusCode).toBe(409);
    expect(release.json().code).toBe('RESERVATION_NOT_ACTIVE');
    expect(await item(stock.id)).toMatchObject({ onHand: 5, reserved: 0 });

    const other = `cart-${uuidv7()}`;
    await reserve({ key: other, lines: [{ variantId: stock.variantId, quantity: 4 }] });
    for (let i = 0; i < 2; i++) {
      const released = await send(t.app, 'POST', '/api/v1/inventory/release', shop.staff, { key: other });
      expect(released.json()).toMatchObject({ status: 'released' });
    }
    expect(await item(stock.id)).toMatchObject({ onHand: 5, reserved: 0 });
    const late = await send(t.app, 'POST', '/api/v1/inventory/commit', shop.staff, { key: other });
    expect(late.json().code).toBe('RESERVATION_NOT_ACTIVE');
    expect(await inventoryEvents(t, shop.id, 'mercato.inventory.committed')).toContainEqual(
      expect.objectContaining({ subject: key }),
    );
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });

  it('return puts committed units back on hand once; an uncommitted reservation cannot be returned', async () => {
    const stock = await createStock(t, shop, { onHand: 6 });
    const key = `returned-${uuidv7()}`;
    await reserve({ key, lines: [{ variantId: stock.variantId, quantity: 2 }] });
    const early = await send(t.app, 'POST', '/api/v1/inventory/return', shop.staff, { key });
    expect(early.statusCode).toBe(409);
    // The reservation's status is an extra of its own: a problem's `status` is the HTTP status (RFC 9457).
    expect(early.json()).toMatchObject({
      code: 'RESERVATION_NOT_ACTIVE',
      status: 409,
      reservationStatus: 'active',
    });
    await send(t.app, 'POST', '/api/v1/inventory/commit', shop.staff, { key });
    expect(await item(stock.id)).toMatchObject({ onHand: 4, reserved: 0 });
    for (let i = 0; i < 2; i++) {
      const returned = await send(t.app, 'POST', '/api/v1/inventory/return', shop.staff, { key });
      expect(returned.statusCode).toBe(200);
      expect(returned.json()).toMatchObject({ status: 'returned' });
    }
    expect(await item(stock.id)).toMatchObject({ onHand: 6, reserved: 0, available: 6 });
    const commit = await send(t.app, 'POST', '/api/v1/inventory/commit', shop.staff, { key });
    expect(commit.json()).toMatchObject({
      code: 'RESERVATION_NOT_ACTIVE',
      status: 409,
      reservationStatus: 'returned',
    });
    const released = await send(t.app, 'POST', '/api/v1/inventory/release', shop.staff, { key });
    expect(released.json()).toMatchObject({ status: 'returned' });
    expect(await inventoryEvents(t, shop.id, 'mercato.inventory.returned')).toEqual([
      expect.objectContaining({ subject: key }),
    ]);
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });

  it('refuses (409, nothing changed) a return that would take on hand past the stock limit, where it failed with a 500', async () => {
    // A shop of its own: the test above counts its tenant's returned events.
    const restocked = await createShop(t, 'restocked-shop');
    const limit = 1_000_000_000;
    const stock = await createStock(t, restocked, { onHand: limit });
    // 100 lines of 10^6: 10^8 units a reservation, sold, then the shelf filled up to the limit again.
    const lines = Array.from({ length: 100 }, () => ({ variantId: stock.variantId, quantity: 1_000_000 }));
    const post = (path: string, body: Record<string, unknown>) =>
      send(t.app, 'POST', `/api/v1/inventory/${path}`, restocked.staff, body);
    for (let i = 0; i < 12; i++) {
      expect((await post('reserve', { key: `sold-${i}`, lines })).statusCode).toBe(201);
      expect((await post('commit', { key: `sold-${i}` })).statusCode).toBe(200);
      const refill = await send(t.app, 'PUT', `/api/v1/inventory/${stock.id}/stock`, restocked.staff, {
        set: limit,
        kind: 'receive',
        reason: 'restock',
      });
      expect(refill.statusCode).toBe(200);
    }
    // Every return up to the limit of on hand is taken; the first past it is refused, nothing moved.
    const last = await post('return', { key: 'sold-0' });
    expect(last.statusCode).toBe(409);
    expect(last.json()).toMatchObject({ code: 'CONFLICT', status: 409, onHand: limit, limit });
    expect(await item2(restocked, stock.id)).toMatchObject({ onHand: limit, reserved: 0 });
    expect(
      (await send(t.app, 'GET', '/api/v1/inventory/reservations/sold-0', restocked.staff)).json(),
    ).toMatchObject({
      status: 'committed',
    });
    // Made room for (stock lowered), every return goes through, and on hand stays within the limit.
    const lowered = await send(t.app, 'PUT', `/api/v1/inventory/${stock.id}/stock`, restocked.staff, {
      set: 0,
      reason: 'count',
    });
    expect(lowered.statusCode).toBe(200);
    for (let i = 0; i < 10; i++) expect((await post('return', { key: `sold-${i}` })).statusCode).toBe(200);
    const eleventh = await post('return', { key: 'sold-10' });
    expect(eleventh.statusCode).toBe(409);
    expect((await item2(restocked, stock.id)).onHand).toBe(limit);
    expect(await t.inventory.verify(restocked.id)).toMatchObject({ drift: [] });
  });

  it('expires by itself: the stock returns and mercato.inventory.expired is published', async () => {
    const stock = await createStock(t, shop, { onHand: 4 });
    const key = `ttl-${uuidv7()}`;
    const made = await reserve({ key, ttlSeconds: 1, lines: [{ variantId: stock.variantId, quantity: 4 }] });
    expect(made.statusCode).toBe(201);
    expect(await item(stock.id)).toMatchObject({ available: 0 });
    await until(
      async () =>
        (await send(t.app, 'GET', `/api/v1/inventory/reservations/${key}`, shop.staff)).json().status ===
        'expired',
      'the reservation to expire',
    );
    expect(await item(stock.id)).toMatchObject({ onHand: 4, reserved: 0, available: 4 });
    expect(await inventoryEvents(t, shop.id, 'mercato.inventory.expired')).toContainEqual(
      expect.objectContaining({ subject: key, data: expect.objectContaining({ status: 'expired' }) }),
    );
    const commit = await send(t.app, 'POST', '/api/v1/inventory/commit', shop.staff, { key });
    expect(commit.statusCode).toBe(409);
    expect(commit.json().code).toBe('RESERVATION_NOT_ACTIVE');
    const extend = await send(t.app, 'POST', '/api/v1/inventory/extend', shop.staff, { key, ttlSeconds: 60 });
    expect(extend.json().code).toBe('RESERVATION_NOT_ACTIVE');
  });

  it('extend moves the expiry of an active reservation', async () => {
    const stock = await createStock(t, shop, { onHand: 1 });
    const key = `extend-${uuidv7()}`;
    const made = (
      await reserve({ key, ttlSeconds: 60, lines: [{ variantId: stock.variantId, quantity: 1 }] })
    ).json();
    const extended = await send(t.app, 'POST', '/api/v1/inventory/extend', shop.staff, {
      key,
      ttlSeconds: 3600,
    });
    expect(extended.statusCode).toBe(200);
    expect(Date.parse(extended.json().expiresAt)).toBeGreaterThan(Date.parse(made.expiresAt));
  });

  it('publishes low-stock once per downward crossing, re-armed when stock rises again', async () => {
    const stock = await createStock(t, shop, { onHand: 10, lowStockThreshold: 3 });
    const lowStock = async () =>
      (await inventoryEvents(t, shop.id, 'mercato.inventory.low-stock')).filter(
        (e) => e.subject === stock.id,
      );
    await reserve({ key: `low-a-${stock.id}`, lines: [{ variantId: stock.variantId, quantity: 7 }] });
    expect(await lowStock()).toHaveLength(1);
    await reserve({ key: `low-b-${stock.id}`, lines: [{ variantId: stock.variantId, quantity: 1 }] });
    expect(await lowStock()).toHaveLength(1);
    expect((await lowStock())[0]!.data).toMatchObject({ variantId: stock.variantId, available: 3 });
    const restock = await send(t.app, 'PUT', `/api/v1/inventory/${stock.id}/stock`, shop.staff, {
      adjust: 10,
      kind: 'receive',
      reason: 'delivery',
    });
    expect(restock.json()).toMatchObject({ available: 12, lowStock: false });
    await reserve({ key: `low-c-${stock.id}`, lines: [{ variantId: stock.variantId, quantity: 10 }] });
    expect(await lowStock()).toHaveLength(2);
  });

  it('allows a backorder only where the item allows it', async () => {
    const stock = await createStock(t, shop, { onHand: 1, allowBackorder: true });
    const made = await reserve({
      key: `bo-${uuidv7()}`,
      lines: [{ variantId: stock.variantId, quantity: 3 }],
    });
    expect(made.statusCode).toBe(201);
    expect(await item(stock.id)).toMatchObject({ onHand: 1, reserved: 3, available: -2 });
    await send(t.app, 'POST', '/api/v1/inventory/commit', shop.staff, { key: made.json().key });
    expect(await item(stock.id)).toMatchObject({ onHand: -2, reserved: 0 });
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });

  it('refuses a backorder that would overflow the stock counters with 409, never 500', async () => {
    const stock = await createStock(t, shop, { onHand: 0, allowBackorder: true });
    const down = await send(t.app, 'PUT', `/api/v1/inventory/${stock.id}/stock`, shop.staff, {
      adjust: -1_000_000_000,
      reason: 'oversold',
    });
    expect(down.statusCode).toBe(200);
    // 100 lines of 1,000,000 (one variant) hold 100,000,000 a reservation: 12 overflow an integer.
    const lines = Array.from({ length: 100 }, () => ({ variantId: stock.variantId, quantity: 1_000_000 }));
    const statuses: number[] = [];
    for (let i = 0; i < 12 && statuses.at(-1) !== 409; i++) {
      const answer = await reserve({ key: `bo-max-${stock.id}-${i}`, lines });
      statuses.push(answer.statusCode);
      if (answer.statusCode === 409) expect(answer.json()).toMatchObject({ code: 'INSUFFICIENT_STOCK' });
    }
    expect(statuses.at(-1)).toBe(409);
    expect(statuses.filter((s) => s !== 201 && s !== 409)).toEqual([]);
    expect((await item(stock.id)).available).toBeGreaterThanOrEqual(-1_000_000_000);
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });

  it('refuses operations beyond its queue bound with 503 and answers the queued ones', async () => {
    const stock = await createStock(t, shop, { onHand: 10 });
    const batcher = createReservationBatcher(t.ctx.db.kysely as InventoryDb, t.wal.events, {
      maxQueue: 3,
      maxQueuePerTenant: 3,
    });
    const lines = [{ variantId: stock.variantId, quantity: 1 }];
    const answers = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) =>
        batcher.submit(shop.id, {
          kind: 'reserve',
          key: `queue-${stock.id}-${i}`,
          lines,
          ttlSeconds: 60,
          reference: null,
          actor: 'test',
          hash: linesHash(lines),
        }),
      ),
    );
    await batcher.close();
    expect(answers.map((a) => a.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
      'rejected',
    ]);
    for (const a of answers.slice(3)) {
      expect((a as PromiseRejectedResult).reason).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    }
    expect(await item(stock.id)).toMatchObject({ reserved: 3 });
  });

  it('answers the in-process API as the routes do', async () => {
    const stock = await createStock(t, shop, { onHand: 2 });
    const key = `api-${uuidv7()}`;
    const made = await t.inventory.reserve(shop.id, {
      key,
      lines: [{ variantId: stock.variantId, quantity: 2 }],
      actor: 'cart',
    });
    expect(made).toMatchObject({
      key,
      status: 'active',
      lines: [{ variantId: stock.variantId, quantity: 2 }],
    });
    const availability = await t.inventory.availability(shop.id, [stock.variantId, uuidv7(), 'not-a-uuid']);
    expect([...availability.values()]).toEqual([
      { variantId: stock.variantId, onHand: 2, reserved: 2, available: 0, allowBackorder: false },
    ]);
    await expect(
      t.inventory.reserve(shop.id, {
        key: `${key}-2`,
        lines: [{ variantId: stock.variantId, quantity: 1 }],
        actor: 'cart',
      }),
    ).rejects.toMatchObject({ code: 'INSUFFICIENT_STOCK' });
    expect(await t.inventory.commit(shop.id, key, 'checkout')).toMatchObject({ status: 'committed' });
  });

  it("runs operations in the caller's transaction with within(trx): committed with it, or not at all", async () => {
    const stock = await createStock(t, shop, { onHand: 3 });
    const lines = [{ variantId: stock.variantId, quantity: 2 }];
    const key = `within-${uuidv7()}`;
    await expect(
      withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
        const made = await t.inventory.within(trx).reserve(shop.id, { key, lines, actor: 'saga' });
        expect(made.status).toBe('active');
        throw new Error('the caller failed after the reservation');
      }),
    ).rejects.toThrow('the caller failed');
    expect(await item(stock.id)).toMatchObject({ onHand: 3, reserved: 0 });
    const committed = await withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
      const ops = t.inventory.within(trx);
      await ops.reserve(shop.id, { key, lines, actor: 'saga' });
      // Not enough left for a second reservation in the same transaction: refused, the first stands.
      await expect(ops.reserve(shop.id, { key: `${key}-more`, lines, actor: 'saga' })).rejects.toMatchObject({
        code: 'INSUFFICIENT_STOCK',
      });
      return ops.commit(shop.id, key, 'saga');
    });
    expect(committed.status).toBe('committed');
    expect(await item(stock.id)).toMatchObject({ onHand: 1, reserved: 0 });
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });
});

// PGlite has one session: no other transaction can hold the item there.
describe.runIf(testDatabaseKind() === 'postgres')('items locked out of id order', () => {
  it('are not waited for: an item another transaction holds fails the lock at once with 55P03 (the batcher runs such a batch again)', async () => {
    const stock = await createStock(t, shop, { onHand: 3 });
    const refused = await withTenant(t.ctx.db.kysely, shop.id, async (holder) => {
      await sql`select id from inventory.items where id = ${stock.id} for update`.execute(holder);
      return withTenant(t.ctx.db.kysely, shop.id, (trx) =>
        lockItems(trx as never, shop.id, [], [stock.id], [], true),
      ).then(
        () => undefined,
        (error: unknown) => error,
      );
    });
    // Waiting would have ended in the statement timeout (57014) instead.
    expect(refused).toMatchObject({ code: '55P03' });
    const locked = await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
      lockItems(trx as never, shop.id, [], [stock.id], [], true),
    );
    expect([...locked.keys()]).toEqual([stock.id]);
  });
});
