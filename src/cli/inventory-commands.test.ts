import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createShop,
  createStock,
  type InventoryTestApp,
  startInventoryApp,
} from '../inventory/inventory-test-fixtures.ts';
import { testDatabaseKind } from '../platform/testing/index.ts';
import { mercato } from './mercato-process.ts';

// The command runs as its own process against the test app's PostgreSQL database (PGlite's data
// directory would be held by the test app; verifyStock itself runs on both in the module's tests).
describe.runIf(testDatabaseKind() === 'postgres')('mercato inventory verify', () => {
  let t: InventoryTestApp;
  beforeAll(async () => {
    t = await startInventoryApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('reports no drift for sound stock and every drifted item with exit code 1', async () => {
    const shop = await createShop(t, 'verify-shop');
    const item = await createStock(t, shop, { onHand: 7 });
    await t.inventory.reserve(shop.id, {
      key: 'verify-1',
      lines: [{ variantId: item.variantId, quantity: 2 }],
      actor: 'test',
    });
    const env = { DATABASE_URL: t.databaseUrl!, MERCATO_DEMO: 'false' };
    const sound = await mercato(['inventory', 'verify'], env);
    expect(sound.code, sound.output).toBe(0);
    expect(sound.output).toContain('agree with their ledger');

    // stock changed behind the ledger's back (the owner role, as an operator's stray UPDATE would)
    await sql`update inventory.items set on_hand = on_hand + 1 where id = ${item.id}`.execute(
      t.ctx.db.kysely,
    );
    const drifted = await mercato(['inventory', 'verify', '--tenant', 'verify-shop'], env);
    expect(drifted.code).toBe(1);
    expect(drifted.output).toContain(item.id);
    expect(drifted.output).toContain('on hand 8 vs ledger 7');
    expect(drifted.output).toContain('1 of 1 item(s) drifted');
  }, 120_000);
});
