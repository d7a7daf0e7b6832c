import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createShop,
  createStock,
  type InventoryTestApp,
  type Shop,
  startInventoryApp,
} from './inventory-test-fixtures.ts';
import { type BatcherOptions, createReservationBatcher } from './reservation-batcher.ts';
import { linesHash, type ReservationOp } from './reservation-ops.ts';
import type { InventoryDb } from './tables.ts';

let t: InventoryTestApp;
let flooding: Shop;
let quiet: Shop;

beforeAll(async () => {
  t = await startInventoryApp();
  flooding = await createShop(t, 'flooding-shop');
  quiet = await createShop(t, 'quiet-shop');
});
afterAll(async () => {
  await t.close();
});

const reserveOp = (variantId: string, key: string): ReservationOp => {
  const lines = [{ variantId, quantity: 1 }];
  return {
    kind: 'reserve',
    key,
    lines,
    ttlSeconds: 60,
    reference: null,
    actor: 'test',
    hash: linesHash(lines),
  };
};
const batcherWith = (options: BatcherOptions) =>
  createReservationBatcher(t.ctx.db.kysely as InventoryDb, t.wal.events, { maxInFlight: 1, ...options });

describe('the reservation batcher shared by every tenant of a process', () => {
  it('refuses one tenant’s flood beyond its share of the queue, and still takes another tenant’s reservations', async () => {
    const [a, b] = await Promise.all([
      createStock(t, flooding, { onHand: 100 }),
      createStock(t, quiet, { onHand: 100 }),
    ]);
    const batcher = batcherWith({ maxQueue: 8, maxQueuePerTenant: 4 });
    const flood = Array.from({ length: 8 }, (_, i) =>
      batcher.submit(flooding.id, reserveOp(a.variantId, `flood-${a.id}-${i}`)),
    );
    const others = Array.from({ length: 2 }, (_, i) =>
      batcher.submit(quiet.id, reserveOp(b.variantId, `quiet-${b.id}-${i}`)),
    );
    const [floodAnswers, otherAnswers] = await Promise.all([
      Promise.allSettled(flood),
      Promise.allSettled(others),
    ]);
    await batcher.close();
    expect(otherAnswers.map((x) => x.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(floodAnswers.map((x) => x.status)).toEqual([
      ...Array<string>(4).fill('fulfilled'),
      ...Array<string>(4).fill('rejected'),
    ]);
    for (const refused of floodAnswers.slice(4)) {
      expect((refused as PromiseRejectedResult).reason).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    }
  });

  it('takes tenants in turn, so one tenant’s backlog does not hold another’s reservation until it is drained', async () => {
    const [a, b] = await Promise.all([
      createStock(t, flooding, { onHand: 100 }),
      createStock(t, quiet, { onHand: 100 }),
    ]);
    const batcher = batcherWith({ maxBatch: 2 });
    const done: string[] = [];
    const flood = Array.from({ length: 12 }, (_, i) =>
      batcher
        .submit(flooding.id, reserveOp(a.variantId, `backlog-${a.id}-${i}`))
        .then(() => done.push(`flooding-${i}`)),
    );
    const other = batcher
      .submit(quiet.id, reserveOp(b.variantId, `turn-${b.id}`))
      .then(() => done.push('quiet'));
    await Promise.all([...flood, other]);
    await batcher.close();
    // Batches of two: the quiet tenant's goes out second at the latest, not after six of the flood's.
    expect(done.indexOf('quiet')).toBeLessThanOrEqual(4);
    expect(done).toHaveLength(13);
  });
});
