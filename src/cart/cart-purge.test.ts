import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../platform/db/index.ts';
import { testDatabaseKind } from '../platform/testing/index.ts';
import { purgeIdleCarts } from './cart-purge.ts';
import {
  type CartTestApp,
  createShop,
  newGuestCart,
  type Shop,
  send,
  startCartApp,
} from './cart-test-fixtures.ts';

let t: CartTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startCartApp({ MERCATO_PURGE_INTERVAL: '1', MERCATO_CART_TTL_SECONDS: '3600' });
  shop = await createShop(t, 'purgeshop');
});
afterAll(() => t.close());

/** Polls until check() holds (no timing is asserted: the limit only ends a hung test). */
async function until(check: () => Promise<boolean>, what: string) {
  const stop = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > stop) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('the idle cart purge job', () => {
  it('deletes carts idle past MERCATO_CART_TTL_SECONDS by itself, every MERCATO_PURGE_INTERVAL', async () => {
    const idle = await newGuestCart(t, shop);
    const kept = await newGuestCart(t, shop);
    const idleId = (await send(t.app, 'GET', '/api/v1/cart', idle.headers)).json<{ id: string }>().id;
    await withSystem(t.ctx.db.kysely, (trx) =>
      sql`update cart.carts set active_at = now() - interval '2 hours' where id = ${idleId}`.execute(trx),
    );
    // Watched in the table: a GET would count as use and keep the cart.
    const exists = async () =>
      (
        await withSystem(t.ctx.db.kysely, (trx) =>
          sql<{ n: number }>`select count(*)::int as n from cart.carts where id = ${idleId}`.execute(trx),
        )
      ).rows[0]!.n === 1;
    await until(async () => !(await exists()), 'the idle cart to be purged');
    expect((await send(t.app, 'GET', '/api/v1/cart', idle.headers)).statusCode).toBe(404);
    expect((await send(t.app, 'GET', '/api/v1/cart', kept.headers)).statusCode).toBe(200);
  });

  // PGlite has one connection: a second transaction cannot hold the lock meanwhile.
  it.skipIf(testDatabaseKind() === 'pglite')(
    'skips an idle cart a request holds locked instead of waiting for it',
    async () => {
      const held = await newGuestCart(t, shop);
      const heldId = (await send(t.app, 'GET', '/api/v1/cart', held.headers)).json<{ id: string }>().id;
      let locked!: () => void;
      let release!: () => void;
      const isLocked = new Promise<void>((resolve) => {
        locked = resolve;
      });
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      // Idle for this purge's TTL of a minute (not for the job's hour, which leaves it alone).
      await withSystem(t.ctx.db.kysely, (trx) =>
        sql`update cart.carts set active_at = now() - interval '10 minutes' where id = ${heldId}`.execute(
          trx,
        ),
      );
      // A change of the cart in progress: its row locked, as every cart change locks it first.
      const holder = withSystem(t.ctx.db.kysely, async (trx) => {
        await sql`select id from cart.carts where id = ${heldId} for update`.execute(trx);
        await sql`update cart.carts set active_at = now() where id = ${heldId}`.execute(trx);
        locked();
        await released;
      });
      await isLocked;
      try {
        await purgeIdleCarts(t.ctx.db.kysely, 60);
      } finally {
        release();
        await holder;
      }
      expect((await send(t.app, 'GET', '/api/v1/cart', held.headers)).statusCode).toBe(200);
    },
  );
});
