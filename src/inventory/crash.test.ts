import type { Kysely } from 'kysely';
import { describe, expect, it } from 'vitest';
import { withTenant } from '../platform/db/index.ts';
import { crashServers, postgresClone, testDatabaseKind, until } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { verifyStock } from './ledger-store.ts';
import type { InventoryTables } from './tables.ts';

const SHOPPERS = 200;
const STOCK = 50;
const CONCURRENCY = 32;
/** The kill lands once this many reservations were answered: mid-load, whatever the machine's speed. */
const KILL_AFTER_ANSWERS = 40;
const SHORT_TTL_SECONDS = 8;

async function call(base: string, method: string, path: string, token: string | undefined, body?: unknown) {
  return fetch(`${base}${path}`, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

// kill -9 of the real server while 200 shoppers reserve 50 units: after a restart on the same
// database, every unanswered request retried with its reservation key, no reservation is lost or
// doubled, stock and ledger agree, and the short-TTL reservations the dead process made expire.
describe.runIf(testDatabaseKind() === 'postgres')('inventory survives kill -9 mid-load (PostgreSQL)', () => {
  const crash = crashServers({ storage: postgresClone });

  it('loses or doubles no reservation and expires the short ones after the restart', async () => {
    const first = await crash.start();
    let token = await crash.adminToken(first.base);
    const hot = uuidv7();
    const slow = uuidv7();
    for (const [variantId, onHand] of [
      [hot, STOCK],
      [slow, 5],
    ] as const) {
      const created = await call(first.base, 'POST', '/api/v1/inventory', token, { variantId, onHand });
      expect(created.status, await created.clone().text()).toBe(201);
    }
    const shortKeys = ['short-1', 'short-2'];
    for (const key of shortKeys) {
      const held = await call(first.base, 'POST', '/api/v1/inventory/reserve', token, {
        key,
        ttlSeconds: SHORT_TTL_SECONDS,
        lines: [{ variantId: slow, quantity: 2 }],
      });
      expect(held.status).toBe(201);
    }

    // the load: CONCURRENCY shoppers take keys from one queue; the server dies half way
    const answers = new Map<string, number>();
    const unanswered: string[] = [];
    const keys = Array.from({ length: SHOPPERS }, (_, i) => `shopper-${i}`);
    const reserveAt = (base: string, key: string) =>
      call(base, 'POST', '/api/v1/inventory/reserve', token, {
        key,
        lines: [{ variantId: hot, quantity: 1 }],
      });
    let next = 0;
    const shopper = async () => {
      while (next < keys.length) {
        const key = keys[next++]!;
        try {
          const response = await reserveAt(first.base, key);
          await response.arrayBuffer();
          answers.set(key, response.status);
          if (answers.size === KILL_AFTER_ANSWERS) first.server.child.kill('SIGKILL');
        } catch {
          unanswered.push(key); // refused or reset once the server is dead
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, shopper));
    expect(await first.server.exited).toBe('SIGKILL');
    expect(unanswered.length).toBeGreaterThan(0); // the kill really landed mid-load
    for (const status of answers.values()) expect([201, 409]).toContain(status);

    const second = await crash.start();
    token = await crash.adminToken(second.base);
    for (const key of unanswered) {
      const response = await reserveAt(second.base, key);
      await response.arrayBuffer();
      answers.set(key, response.status);
    }
    expect(answers.size).toBe(SHOPPERS);
    const succeeded = [...answers]
      .filter(([, status]) => status === 200 || status === 201)
      .map(([key]) => key);
    expect(succeeded).toHaveLength(STOCK);

    const db = crash.owner().kysely as Kysely<InventoryTables>;
    const rows = await db
      .selectFrom('inventory.reservation_lines as l')
      .innerJoin('inventory.reservations as r', 'r.id', 'l.reservation_id')
      .select(['r.key', 'r.status', 'l.quantity', 'r.tenant_id'])
      .where('l.variant_id', '=', hot)
      .execute();
    // every 2xx answer is a stored reservation, and nothing else is
    expect(rows.map((r) => r.key).sort()).toEqual([...succeeded].sort());
    expect(rows.every((r) => r.status === 'active' && r.quantity === 1)).toBe(true);
    const item = await db
      .selectFrom('inventory.items')
      .select(['on_hand', 'reserved', 'available', 'tenant_id'])
      .where('variant_id', '=', hot)
      .executeTakeFirstOrThrow();
    expect(item).toMatchObject({ on_hand: STOCK, reserved: STOCK, available: 0 });
    const verified = await withTenant(db, item.tenant_id, (trx) => verifyStock(trx));
    expect(verified.drift).toEqual([]);

    // the short reservations the dead process made expire now and give their stock back
    await until(
      async () => {
        const states = await Promise.all(
          shortKeys.map(async (key) => {
            const response = await call(second.base, 'GET', `/api/v1/inventory/reservations/${key}`, token);
            return ((await response.json()) as { status: string }).status;
          }),
        );
        return states.every((s) => s === 'expired');
      },
      'the short reservations to expire',
      60_000,
    );
    const slowItem = await db
      .selectFrom('inventory.items')
      .select(['on_hand', 'reserved'])
      .where('variant_id', '=', slow)
      .executeTakeFirstOrThrow();
    expect(slowItem).toEqual({ on_hand: 5, reserved: 0 });
    expect((await withTenant(db, item.tenant_id, (trx) => verifyStock(trx))).drift).toEqual([]);

    expect(await crash.stop(second.server), second.server.output()).toBe(0);
  }, 240_000);
});
