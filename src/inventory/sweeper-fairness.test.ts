import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../platform/db/index.ts';
import { createExpirySweeper } from './expiry-sweeper.ts';
import {
  createShop,
  createStock,
  type InventoryTestApp,
  type Shop,
  startInventoryApp,
} from './inventory-test-fixtures.ts';
import type { InventoryDb } from './tables.ts';

let t: InventoryTestApp;
let backlogged: Shop;
let other: Shop;

beforeAll(async () => {
  // The module's own safety sweep stays out of the way: the sweep here is the test's.
  t = await startInventoryApp({}, { sweeper: { intervalMs: 3_600_000 } });
  backlogged = await createShop(t, 'backlogged-shop');
  other = await createShop(t, 'other-sweep-shop');
});
afterAll(async () => {
  await t.close();
});

async function reserveMany(shop: Shop, count: number) {
  const item = await createStock(t, shop, { onHand: count });
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      t.inventory.reserve(shop.id, {
        key: `sweep-fair-${item.id}-${i}`,
        ttlSeconds: 3600,
        lines: [{ variantId: item.variantId, quantity: 1 }],
        actor: 'test',
      }),
    ),
  );
  return item;
}

describe('the expiry sweeper shared by every tenant', () => {
  it('expires another tenant’s due reservation in its first round, not after one tenant’s backlog', async () => {
    const backlog = await reserveMany(backlogged, 2000);
    const late = await reserveMany(other, 1);
    // The backlog fell due an hour before the other tenant's one reservation.
    await withSystem(t.ctx.db.kysely, async (trx) => {
      await sql`update inventory.reservations set expires_at = now() - interval '2 hours'
        where tenant_id = ${backlogged.id} and status = 'active'`.execute(trx);
      await sql`update inventory.reservations set expires_at = now() - interval '1 hour'
        where tenant_id = ${other.id} and status = 'active'`.execute(trx);
    });
    const sweeper = createExpirySweeper(t.ctx.db.kysely as InventoryDb, t.wal.events, t.ctx.logger, {
      batch: 100,
    });
    expect(await sweeper.sweep()).toBe(2001);
    const before = await withSystem(t.ctx.db.kysely, async (trx) => {
      const { rows } = await sql<{ n: number | string }>`
        select count(*) as n from inventory.ledger l
        where l.item_id = ${backlog.id} and l.kind = 'expire' and l.created_at < (
          select created_at from inventory.ledger where item_id = ${late.id} and kind = 'expire')`.execute(
        trx,
      );
      return Number(rows[0]!.n);
    });
    // At most one batch of the backlog went before it.
    expect(before).toBeLessThanOrEqual(100);
  });
});
