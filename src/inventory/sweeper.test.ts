import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../identity/users/user-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { type SecondProcess, startSecondProcess, testDatabaseKind } from '../platform/testing/index.ts';
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

let t: InventoryTestApp;
let shop: Shop;

beforeAll(async () => {
  // the safety sweep is left at its default: the sweeps here are the test's own, racing the timer
  t = await startInventoryApp();
  shop = await createShop(t, 'sweep-shop');
});
afterAll(async () => {
  await t.close();
});

/** Reserves `count` short-lived single units of a new variant; returns the variant's item and keys. */
async function shortReservations(prefix: string, count: number) {
  const item = await createStock(t, shop, { onHand: count * 2 });
  const keys = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  const made = await Promise.all(
    keys.map((key) =>
      t.inventory.reserve(shop.id, {
        key,
        ttlSeconds: 1,
        lines: [{ variantId: item.variantId, quantity: 1 }],
        actor: 'test',
      }),
    ),
  );
  const last = Math.max(...made.map((r) => Date.parse(r.expiresAt)));
  // past every expiry (by the clock of this process, which made them)
  await until(() => Date.now() > last + 20, 'the reservations to be due');
  return { item, keys };
}

async function expireEntries(itemId: string): Promise<number> {
  return withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
    const { rows } = await sql<{ n: number | string }>`
      select count(*) as n from inventory.ledger where item_id = ${itemId} and kind = 'expire'`.execute(trx);
    return Number(rows[0]!.n);
  });
}

describe('the expiry sweeper', () => {
  it("expires the other tenants' reservations when one tenant's expiry fails", async () => {
    const broken = await createShop(t, 'sweep-broken-shop');
    const id = '01900000-0000-7000-8000-00000000b0c0';
    // An active, due reservation holding an item that does not exist: expiring it fails.
    await withTenant(t.ctx.db.kysely, broken.id, async (trx) => {
      await sql`insert into inventory.reservations
          (id, tenant_id, key, status, request_hash, actor, expires_at)
        values (${id}, ${broken.id}, 'broken', 'active', 'x', 'test', now() - interval '1 minute')`.execute(
        trx,
      );
      await sql`insert into inventory.reservation_lines
          (reservation_id, tenant_id, item_id, variant_id, location_id, quantity)
        values (${id}, ${broken.id}, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 1)`.execute(
        trx,
      );
    });
    try {
      const { item, keys } = await shortReservations('beside-broken', 3);
      await t.inventory.sweepExpired();
      expect(await expireEntries(item.id)).toBe(keys.length);
    } finally {
      await withTenant(t.ctx.db.kysely, broken.id, (trx) =>
        sql`delete from inventory.reservations where id = ${id}`.execute(trx),
      );
    }
  });

  it('expires each due reservation exactly once while sweeps and commits race', async () => {
    const { item, keys } = await shortReservations('race', 40);
    const [, , , commits] = await Promise.all([
      t.inventory.sweepExpired(),
      t.inventory.sweepExpired(),
      t.inventory.sweepExpired(),
      Promise.all(
        keys.slice(0, 10).map((key) => send(t.app, 'POST', '/api/v1/inventory/commit', shop.staff, { key })),
      ),
    ]);
    for (const answer of commits) expect(answer.json().code).toBe('RESERVATION_NOT_ACTIVE');
    await until(async () => (await expireEntries(item.id)) >= 40, 'every reservation expired');
    expect(await expireEntries(item.id)).toBe(40);
    const expired = (await inventoryEvents(t, shop.id, 'mercato.inventory.expired')).filter((e) =>
      keys.includes(e.subject),
    );
    expect(expired).toHaveLength(40);
    const stock = await send(t.app, 'GET', `/api/v1/inventory/${item.id}`, shop.staff);
    expect(stock.json()).toMatchObject({ onHand: 80, reserved: 0, available: 80 });
    expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
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

    it('never oversells a variant reserved through both processes at once', async () => {
      const item = await createStock(t, shop, { onHand: 30 });
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          (i % 2 === 0 ? t.inventory : secondInventory)
            .reserve(shop.id, {
              key: `both-${item.id}-${i}`,
              lines: [{ variantId: item.variantId, quantity: 1 }],
              actor: 'test',
            })
            .then(
              () => 'ok',
              (error: { code?: string }) => error.code,
            ),
        ),
      );
      expect(answers.filter((a) => a === 'ok')).toHaveLength(30);
      expect(answers.filter((a) => a === 'INSUFFICIENT_STOCK')).toHaveLength(70);
      const stock = await send(t.app, 'GET', `/api/v1/inventory/${item.id}`, shop.staff);
      expect(stock.json()).toMatchObject({ onHand: 30, reserved: 30, available: 0 });
      expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
    });

    it('makes one reservation of a key both processes receive at once', async () => {
      const item = await createStock(t, shop, { onHand: 100 });
      for (let round = 0; round < 5; round++) {
        const key = `twice-${item.id}-${round}`;
        const input = { key, lines: [{ variantId: item.variantId, quantity: 3 }], actor: 'test' };
        const made = await Promise.all([
          t.inventory.reserve(shop.id, input),
          secondInventory.reserve(shop.id, input),
          t.inventory.reserve(shop.id, input),
          secondInventory.reserve(shop.id, input),
        ]);
        expect(new Set(made.map((r) => r.createdAt)).size).toBe(1);
      }
      const stock = await send(t.app, 'GET', `/api/v1/inventory/${item.id}`, shop.staff);
      expect(stock.json()).toMatchObject({ reserved: 15 });
      expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
    });

    it('shares the work (skip locked): every reservation expires once', async () => {
      const { item, keys } = await shortReservations('two', 100);
      await Promise.all([
        t.inventory.sweepExpired(),
        secondInventory.sweepExpired(),
        t.inventory.sweepExpired(),
        secondInventory.sweepExpired(),
      ]);
      await until(async () => (await expireEntries(item.id)) >= 100, 'every reservation expired');
      expect(await expireEntries(item.id)).toBe(100);
      const expired = (await inventoryEvents(t, shop.id, 'mercato.inventory.expired')).filter((e) =>
        keys.includes(e.subject),
      );
      expect(expired).toHaveLength(100);
      expect(await t.inventory.verify(shop.id)).toMatchObject({ drift: [] });
    });
  });
});
