import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../identity/users/user-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { type SecondProcess, startSecondProcess, testDatabaseKind } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { createWal } from '../wal/index.ts';
import { createInventory, type InventoryModule } from './index.ts';
import {
  createShop,
  createStock,
  type InventoryTestApp,
  inventoryEvents,
  type Shop,
  startInventoryApp,
  until,
} from './inventory-test-fixtures.ts';
import type { InventoryItem, LedgerEntry, Location, Reservation } from './views.ts';

let t: InventoryTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startInventoryApp();
  shop = await createShop(t, 'transfer-shop');
});
afterAll(async () => {
  await t.close();
});

const item = async (id: string) =>
  (await send(t.app, 'GET', `/api/v1/inventory/${id}`, shop.staff)).json<InventoryItem>();
const reservation = async (key: string) =>
  (
    await send(t.app, 'GET', `/api/v1/inventory/reservations/${encodeURIComponent(key)}`, shop.staff)
  ).json<Reservation>();
const ledger = async (itemId: string) =>
  (await send(t.app, 'GET', `/api/v1/inventory/${itemId}/ledger?limit=100`, shop.staff)).json<{
    items: LedgerEntry[];
  }>().items;
const held = (r: Reservation) => r.lines.reduce((sum, l) => sum + l.quantity, 0);
/** The AppError a promise rejects with, as its code and extras (fails the test when it resolves). */
const refusal = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (error) {
    const { code, extras } = error as { code: string; extras: Record<string, unknown> };
    return { code, ...extras } as {
      code: string;
      reservationStatus?: string;
      errors?: { pointer: string }[];
    };
  }
  throw new Error('expected a refusal');
};

/** A campaign's pool: `pool` units of a new variant (of `onHand`) held as one reservation. */
async function campaign(onHand: number, pool: number) {
  const stock = await createStock(t, shop, { onHand });
  const key = `flash-sale:${uuidv7()}`;
  await t.inventory.reserve(shop.id, {
    key,
    lines: [{ variantId: stock.variantId, quantity: pool }],
    ttlSeconds: 86_400,
    actor: 'flash-sales',
  });
  return { stock, key, lines: (quantity: number) => [{ variantId: stock.variantId, quantity }] };
}

describe('transfer out of a pool', () => {
  it('moves part of a pool into a new order reservation that then commits: on hand falls, the pool stays', async () => {
    const sale = await campaign(12, 10);
    const order = `order-${uuidv7()}`;
    const changedBefore = await inventoryEvents(t, shop.id, 'mercato.inventory.stock-changed');
    const moved = await t.inventory.transfer(shop.id, {
      from: sale.key,
      to: order,
      lines: sale.lines(3),
      ttlSeconds: 600,
      reference: 'order 17',
      actor: 'checkout',
    });
    expect(moved).toMatchObject({
      key: order,
      status: 'active',
      reference: 'order 17',
      lines: [{ variantId: sale.stock.variantId, locationId: sale.stock.locationId, quantity: 3 }],
    });
    const ttl = Date.parse(moved.expiresAt) - Date.parse(moved.createdAt);
    expect(ttl).toBe(600_000);
    expect(await reservation(sale.key)).toMatchObject({
      status: 'active',
      lines: [{ variantId: sale.stock.variantId, quantity: 7 }],
    });
    // The units stay reserved: only their holder changed.
    expect(await item(sale.stock.id)).toMatchObject({ onHand: 12, reserved: 10, available: 2 });
    expect(await inventoryEvents(t, shop.id, 'mercato.inventory.stock-changed')).toHaveLength(
      changedBefore.length,
    );
    const [event] = (await inventoryEvents(t, shop.id, 'mercato.inventory.transferred')).filter(
      (e) => e.subject === order,
    );
    expect(event?.data).toMatchObject({
      from: { key: sale.key, status: 'active', lines: [{ quantity: 7 }] },
      to: { key: order, status: 'active', lines: [{ quantity: 3 }] },
    });
    expect((await ledger(sale.stock.id)).filter((e) => e.kind === 'transfer')).toEqual([
      expect.objectContaining({
        quantity: 3,
        onHandDelta: 0,
        reservedDelta: 0,
        onHandAfter: 12,
        reservedAfter: 10,
        reference: 'order 17',
        reason: `transfer from ${sale.key}`,
        reservationKey: order,
        actor: 'checkout',
      }),
    ]);

    expect(await t.inventory.commit(shop.id, order, 'checkout')).toMatchObject({ status: 'committed' });
    expect(await item(sale.stock.id)).toMatchObject({ onHand: 9, reserved: 7, available: 2 });
    expect(held(await reservation(sale.key))).toBe(7);
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });

  it('answers the same transfer again with the reservation it created, moving nothing, even once committed', async () => {
    const sale = await campaign(10, 10);
    const order = `order-${uuidv7()}`;
    const input = { from: sale.key, to: order, lines: sale.lines(2), actor: 'checkout' };
    const first = await t.inventory.transfer(shop.id, input);
    const again = await t.inventory.transfer(shop.id, input);
    expect(again).toEqual(first);
    await t.inventory.commit(shop.id, order, 'checkout');
    expect(await t.inventory.transfer(shop.id, input)).toMatchObject({ key: order, status: 'committed' });
    // Several replays at once share a batch: still one move.
    await Promise.all(Array.from({ length: 5 }, () => t.inventory.transfer(shop.id, input)));
    expect(held(await reservation(sale.key))).toBe(8);
    expect(await item(sale.stock.id)).toMatchObject({ onHand: 8, reserved: 8 });
    expect((await ledger(sale.stock.id)).filter((e) => e.kind === 'transfer')).toHaveLength(1);
    const events = await inventoryEvents(t, shop.id, 'mercato.inventory.transferred');
    expect(events.filter((e) => e.subject === order)).toHaveLength(1);
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });

  it('adds to an active reservation (same item summed, expiry unchanged) and leaves an emptied pool active', async () => {
    const sale = await campaign(5, 4);
    const order = `order-${uuidv7()}`;
    const first = await t.inventory.transfer(shop.id, {
      from: sale.key,
      to: order,
      lines: sale.lines(1),
      actor: 'checkout',
    });
    const more = await t.inventory.transfer(shop.id, {
      from: sale.key,
      to: order,
      lines: sale.lines(3),
      ttlSeconds: 5,
      actor: 'checkout',
    });
    expect(more).toMatchObject({ status: 'active', lines: [{ quantity: 4 }], expiresAt: first.expiresAt });
    // The campaign's pool at 0 is still the campaign's pool.
    expect(await reservation(sale.key)).toMatchObject({ status: 'active', lines: [] });
    const rows = await withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
      const { rows } = await sql<{ key: string; quantity: number }>`
        select r.key, l.quantity from inventory.reservation_lines l
        join inventory.reservations r on r.id = l.reservation_id
        where r.key in (${sale.key}, ${order})`.execute(trx);
      return rows;
    });
    expect(rows).toEqual([{ key: order, quantity: 4 }]);
    await expect(
      t.inventory.transfer(shop.id, {
        from: sale.key,
        to: `order-${uuidv7()}`,
        lines: sale.lines(1),
        actor: 'c',
      }),
    ).rejects.toMatchObject({
      code: 'INSUFFICIENT_STOCK',
      extras: { lines: [{ variantId: sale.stock.variantId, requested: 1, available: 0 }] },
    });
    expect(await item(sale.stock.id)).toMatchObject({ onHand: 5, reserved: 4, available: 1 });
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });
});

describe('transfer back into the pool', () => {
  it('moves everything of a failed order back: the order ends released, the pool grows, available is unchanged', async () => {
    // The pool spans two locations; the units go back to the items they came from.
    const atDefault = await createStock(t, shop, { onHand: 2 });
    const made = await send(t.app, 'POST', '/api/v1/inventory/locations', shop.staff, { name: 'Annex' });
    const annex = made.json<Location>();
    const atAnnex = await createStock(t, shop, {
      onHand: 6,
      variantId: atDefault.variantId,
      locationId: annex.id,
    });
    const variantId = atDefault.variantId;
    const pool = `flash-sale:${uuidv7()}`;
    await t.inventory.reserve(shop.id, {
      key: pool,
      lines: [{ variantId, quantity: 7 }],
      actor: 'flash-sales',
    });
    const order = `order-${uuidv7()}`;
    const taken = await t.inventory.transfer(shop.id, {
      from: pool,
      to: order,
      lines: [{ variantId, quantity: 4 }],
      actor: 'checkout',
    });
    // Item order: the line of the lower item id gives first.
    const first = [atDefault, atAnnex].sort((a, b) => (a.id < b.id ? -1 : 1))[0]!;
    expect(taken.lines).toContainEqual({ variantId, locationId: first.locationId, quantity: 2 });
    expect(held(taken)).toBe(4);
    const availableBefore = (await t.inventory.availability(shop.id, [variantId])).get(variantId);
    expect(availableBefore).toMatchObject({ onHand: 8, reserved: 7, available: 1 });

    const back = await t.inventory.transfer(shop.id, { from: order, to: pool, actor: 'checkout' });
    expect(back).toMatchObject({ key: pool, status: 'active' });
    expect(back.lines).toEqual(
      expect.arrayContaining([
        { variantId, locationId: atDefault.locationId, quantity: 2 },
        { variantId, locationId: annex.id, quantity: 5 },
      ]),
    );
    expect(back.lines).toHaveLength(2);
    expect(await reservation(order)).toMatchObject({ status: 'released', lines: [] });
    expect((await t.inventory.availability(shop.id, [variantId])).get(variantId)).toEqual(availableBefore);
    const [event] = (await inventoryEvents(t, shop.id, 'mercato.inventory.transferred')).filter(
      (e) => (e.data['from'] as Reservation).key === order,
    );
    expect(event).toMatchObject({
      subject: pool,
      data: { from: { status: 'released', lines: [] }, to: { key: pool, status: 'active' } },
    });
    // The order's hold ended without a release: no unit went back to available stock.
    const released = await inventoryEvents(t, shop.id, 'mercato.inventory.released');
    expect(released.filter((e) => e.subject === order)).toEqual([]);
    const entries = [...(await ledger(atDefault.id)), ...(await ledger(atAnnex.id))].filter(
      (e) => e.kind === 'transfer' && e.reservationKey === pool,
    );
    expect(entries.map((e) => e.quantity).sort()).toEqual([2, 2]);
    expect(entries.every((e) => e.reference === order && e.onHandDelta === 0 && e.reservedDelta === 0)).toBe(
      true,
    );

    // Again (the saga after a crash): the order holds nothing more, the pool is answered as it is.
    const replay = await t.inventory.transfer(shop.id, { from: order, to: pool, actor: 'checkout' });
    expect(replay).toEqual(await reservation(pool));
    expect(held(replay)).toBe(7);
    await expect(
      t.inventory.transfer(shop.id, { from: order, to: `missing-${uuidv7()}`, actor: 'checkout' }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    for (const stock of [atDefault, atAnnex]) {
      expect((await ledger(stock.id)).filter((e) => e.kind === 'transfer')).toHaveLength(2);
    }
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });

  it('treats a move of everything from a committed or expired reservation as done', async () => {
    const sale = await campaign(6, 6);
    const committed = `order-${uuidv7()}`;
    await t.inventory.transfer(shop.id, { from: sale.key, to: committed, lines: sale.lines(1), actor: 'c' });
    await t.inventory.commit(shop.id, committed, 'c');
    const expired = `order-${uuidv7()}`;
    const short = await t.inventory.transfer(shop.id, {
      from: sale.key,
      to: expired,
      lines: sale.lines(2),
      ttlSeconds: 1,
      actor: 'c',
    });
    await until(() => Date.now() > Date.parse(short.expiresAt) + 20, 'the order to be due');
    for (const from of [committed, expired]) {
      const answer = await t.inventory.transfer(shop.id, { from, to: sale.key, actor: 'c' });
      expect(held(answer)).toBe(3);
    }
    expect(await reservation(expired)).toMatchObject({ status: 'expired' });
    expect(await item(sale.stock.id)).toMatchObject({ onHand: 5, reserved: 3, available: 2 });
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });
});

describe('refusals', () => {
  it('refuses more than the pool holds, reporting every line, and moves nothing', async () => {
    const sale = await campaign(10, 3);
    const other = await createStock(t, shop, { onHand: 5 });
    const error = await refusal(
      t.inventory.transfer(shop.id, {
        from: sale.key,
        to: `order-${uuidv7()}`,
        lines: [
          { variantId: sale.stock.variantId, quantity: 5 },
          { variantId: other.variantId, quantity: 1 },
        ],
        actor: 'checkout',
      }),
    );
    expect(error).toMatchObject({
      code: 'INSUFFICIENT_STOCK',
      lines: [
        { variantId: sale.stock.variantId, requested: 5, available: 3 },
        { variantId: other.variantId, requested: 1, available: 0 },
      ].sort((a, b) => (a.variantId < b.variantId ? -1 : 1)),
    });
    expect(await reservation(sale.key)).toMatchObject({ status: 'active', lines: [{ quantity: 3 }] });
    expect((await ledger(sale.stock.id)).filter((e) => e.kind === 'transfer')).toEqual([]);
  });

  it('refuses a missing or inactive from, and a to that is not active', async () => {
    const sale = await campaign(10, 5);
    const missing = `missing-${uuidv7()}`;
    expect(
      await refusal(t.inventory.transfer(shop.id, { from: missing, to: `o-${uuidv7()}`, actor: 'c' })),
    ).toMatchObject({ code: 'NOT_FOUND' });
    expect(
      await refusal(
        t.inventory.transfer(shop.id, {
          from: missing,
          to: `o-${uuidv7()}`,
          lines: sale.lines(1),
          actor: 'c',
        }),
      ),
    ).toMatchObject({ code: 'NOT_FOUND' });

    const done = `order-${uuidv7()}`;
    await t.inventory.transfer(shop.id, { from: sale.key, to: done, lines: sale.lines(1), actor: 'c' });
    await t.inventory.commit(shop.id, done, 'c');
    // A committed from with named lines: nothing of it can move.
    expect(
      await refusal(
        t.inventory.transfer(shop.id, { from: done, to: sale.key, lines: sale.lines(1), actor: 'c' }),
      ),
    ).toMatchObject({ code: 'RESERVATION_NOT_ACTIVE', reservationStatus: 'committed' });
    // A to that is no longer active cannot take units.
    expect(
      await refusal(
        t.inventory.transfer(shop.id, { from: sale.key, to: done, lines: sale.lines(2), actor: 'c' }),
      ),
    ).toMatchObject({ code: 'RESERVATION_NOT_ACTIVE', reservationStatus: 'committed' });
    const released = `order-${uuidv7()}`;
    await t.inventory.transfer(shop.id, { from: sale.key, to: released, lines: sale.lines(1), actor: 'c' });
    await t.inventory.release(shop.id, released, 'c');
    expect(
      await refusal(t.inventory.transfer(shop.id, { from: sale.key, to: released, actor: 'c' })),
    ).toMatchObject({ code: 'RESERVATION_NOT_ACTIVE', reservationStatus: 'released' });
    // A reserve of a key a transfer created is another request: refused, not answered.
    await expect(
      t.inventory.reserve(shop.id, { key: done, lines: sale.lines(1), actor: 'c' }),
    ).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });

    expect(await reservation(sale.key)).toMatchObject({ status: 'active', lines: [{ quantity: 3 }] });
    expect(await item(sale.stock.id)).toMatchObject({ onHand: 9, reserved: 3 });
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });

  it('refuses bad input with VALIDATION_FAILED naming the field', async () => {
    const sale = await campaign(2, 2);
    const base = { from: sale.key, to: `order-${uuidv7()}`, actor: 'c' };
    const cases: [Record<string, unknown>, string][] = [
      [{ from: '' }, '/from'],
      [{ to: 'has space' }, '/to'],
      [{ to: 'x'.repeat(201) }, '/to'],
      [{ to: sale.key }, '/to'],
      [{ lines: [] }, '/lines'],
      [{ lines: [{ variantId: 'nope', quantity: 1 }] }, '/lines/0/variantId'],
      [{ lines: [{ variantId: sale.stock.variantId, quantity: 0 }] }, '/lines/0/quantity'],
      [{ lines: [{ variantId: sale.stock.variantId, quantity: 1.5 }] }, '/lines/0/quantity'],
      [{ ttlSeconds: 0 }, '/ttlSeconds'],
      [{ ttlSeconds: 31 * 86_400 }, '/ttlSeconds'],
      [{ reference: '' }, '/reference'],
      [{ reference: 'a\u0000b' }, '/reference'],
    ];
    for (const [change, pointer] of cases) {
      const input = { ...base, ...change } as Parameters<typeof t.inventory.transfer>[1];
      const error = await refusal(t.inventory.transfer(shop.id, input));
      expect(error, JSON.stringify(change)).toMatchObject({ code: 'VALIDATION_FAILED' });
      expect(error.errors?.[0]?.pointer, JSON.stringify(change)).toBe(pointer);
    }
    expect(held(await reservation(sale.key))).toBe(2);
  });
});

describe('transfers at once', () => {
  it('50 concurrent transfers of 1 unit from a pool of 20: exactly 20 move, 30 find it empty', async () => {
    const sale = await campaign(25, 20);
    const before = t.inventory.batcherStats();
    const orders = Array.from({ length: 50 }, () => `order-${uuidv7()}`);
    const answers = await Promise.allSettled(
      orders.map((to) =>
        t.inventory.transfer(shop.id, { from: sale.key, to, lines: sale.lines(1), actor: 'checkout' }),
      ),
    );
    const moved = answers.filter((a) => a.status === 'fulfilled');
    const refused = answers.filter((a) => a.status === 'rejected');
    expect(moved).toHaveLength(20);
    expect(refused).toHaveLength(30);
    for (const r of refused) {
      expect(r.reason).toMatchObject({
        code: 'INSUFFICIENT_STOCK',
        extras: { lines: [{ variantId: sale.stock.variantId, requested: 1, available: 0 }] },
      });
    }
    for (const m of moved) expect(held(m.value)).toBe(1);
    // They shared transactions.
    expect(t.inventory.batcherStats().batches - before.batches).toBeLessThan(50);
    expect(await reservation(sale.key)).toMatchObject({ status: 'active', lines: [] });
    expect(await item(sale.stock.id)).toMatchObject({ onHand: 25, reserved: 20, available: 5 });
    expect((await ledger(sale.stock.id)).filter((e) => e.kind === 'transfer')).toHaveLength(20);
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });

    // Half of the orders fail and give their units back, at once, while the rest commit.
    const won = moved.map((m) => m.value.key);
    await Promise.all(
      won.map((key, i) =>
        i % 2 === 0
          ? t.inventory.transfer(shop.id, { from: key, to: sale.key, actor: 'checkout' })
          : t.inventory.commit(shop.id, key, 'checkout'),
      ),
    );
    expect(held(await reservation(sale.key))).toBe(10);
    expect(await item(sale.stock.id)).toMatchObject({ onHand: 15, reserved: 10, available: 5 });
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });
});

describe.runIf(testDatabaseKind() === 'postgres')('with two processes on one database', () => {
  let second: SecondProcess;
  let secondInventory: InventoryModule;
  beforeAll(async () => {
    second = await startSecondProcess(t.databaseUrl!, {
      modules: async (ctx, identity) => {
        const wal = await createWal(ctx);
        secondInventory = await createInventory(ctx, {
          events: wal.events,
          resolveTenant: identity.resolveTenant,
        });
        return [wal, secondInventory];
      },
    });
  });
  afterAll(async () => {
    await second.close();
  });

  it('moves each unit once when both processes receive every transfer, and gives back without deadlock', async () => {
    const sale = await campaign(30, 20);
    const orders = Array.from({ length: 40 }, () => `order-${uuidv7()}`);
    const outcome = (promise: Promise<Reservation>) =>
      promise.then(
        (r) => r.createdAt,
        (error: { code?: string }) => error.code,
      );
    const answers = await Promise.all(
      orders.map((to) =>
        Promise.all(
          [t.inventory, secondInventory, t.inventory].map((inventory) =>
            outcome(inventory.transfer(shop.id, { from: sale.key, to, lines: sale.lines(1), actor: 'c' })),
          ),
        ),
      ),
    );
    // Each order's three deliveries agree: the one reservation, or all refused.
    for (const three of answers) expect(new Set(three).size).toBe(1);
    const won = orders.filter((_, i) => answers[i]![0] !== 'INSUFFICIENT_STOCK');
    expect(won).toHaveLength(20);
    expect(answers.filter((a) => a[0] === 'INSUFFICIENT_STOCK')).toHaveLength(20);
    expect(await reservation(sale.key)).toMatchObject({ status: 'active', lines: [] });
    expect((await ledger(sale.stock.id)).filter((e) => e.kind === 'transfer')).toHaveLength(20);

    // Give-backs into the pool and new takes out of it, through both processes at once.
    const later = Array.from({ length: 10 }, () => `order-${uuidv7()}`);
    await Promise.all([
      ...won.map((from, i) =>
        (i % 2 ? t.inventory : secondInventory).transfer(shop.id, { from, to: sale.key, actor: 'c' }),
      ),
      ...later.map((to, i) =>
        outcome(
          (i % 2 ? secondInventory : t.inventory).transfer(shop.id, {
            from: sale.key,
            to,
            lines: sale.lines(1),
            actor: 'c',
          }),
        ),
      ),
    ]);
    const taken = (await Promise.all(later.map(reservation))).filter((r) => r.key).length;
    expect(held(await reservation(sale.key))).toBe(20 - taken);
    expect(await item(sale.stock.id)).toMatchObject({ onHand: 30, reserved: 20, available: 10 });
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });
});

describe("in the caller's transaction", () => {
  it('commits a transfer with the caller, or not at all', async () => {
    const sale = await campaign(4, 4);
    const order = `order-${uuidv7()}`;
    const input = { from: sale.key, to: order, lines: sale.lines(2), actor: 'saga' };
    await expect(
      withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
        expect(await t.inventory.within(trx).transfer(shop.id, input)).toMatchObject({ key: order });
        throw new Error('the caller failed after the transfer');
      }),
    ).rejects.toThrow('the caller failed');
    expect(held(await reservation(sale.key))).toBe(4);
    const made = await withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
      const ops = t.inventory.within(trx);
      await expect(
        ops.transfer(shop.id, { ...input, to: `${order}-big`, lines: sale.lines(5) }),
      ).rejects.toMatchObject({ code: 'INSUFFICIENT_STOCK' });
      const moved = await ops.transfer(shop.id, input);
      return ops.commit(shop.id, moved.key, 'saga');
    });
    expect(made).toMatchObject({ key: order, status: 'committed', lines: [{ quantity: 2 }] });
    expect(held(await reservation(sale.key))).toBe(2);
    expect(await item(sale.stock.id)).toMatchObject({ onHand: 2, reserved: 2 });
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
  });
});
