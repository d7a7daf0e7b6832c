import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callServer, mercato } from '../cli/mercato-process.ts';
import { withSystem } from '../platform/db/index.ts';
import { crashServers, postgresClone, testDatabaseKind, testRedisUrl } from '../platform/testing/index.ts';
import { demoBuyers, serverSale } from './flash-test-fixtures.ts';

const UNITS = 150;
const CUSTOMERS = 400;

const call = callServer;

// kill -9 of the real server in the middle of a stampede, and a Redis that loses the gate's keys
// in the middle of another: no unit is sold twice, every 202 has its order, reconciliation gives
// back what the dead process had taken from the gate, and the sale then sells exactly its units.
describe.runIf(testDatabaseKind() === 'postgres' && testRedisUrl() !== undefined)(
  'a flash sale survives kill -9 and a Redis flush (PostgreSQL, Redis)',
  () => {
    let redis: Redis;
    const prefix = `test-fs-crash-${randomUUID()}:`;
    beforeAll(() => {
      redis = new Redis(testRedisUrl()!);
    });
    // Registered first, so it runs after the harness's afterAll has stopped the servers.
    afterAll(async () => {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    });
    const crash = crashServers({
      storage: postgresClone,
      env: {
        REDIS_URL: testRedisUrl()!,
        MERCATO_REDIS_PREFIX: prefix,
        MERCATO_FLASH_IP_RATE: '100000000',
        MERCATO_FLASH_LEAK_GRACE_MS: '1000',
      },
    });

    it('sells no unit twice, loses no admitted buyer, and reconciles what the crash leaked', async () => {
      const first = await crash.start();
      let base = first.base;
      const staff = await crash.adminHeaders(base);
      const { variant, saleId } = await serverSale(base, staff, {
        title: 'Crash drop',
        sku: 'CRASH',
        onHand: 200,
        name: 'Crash sale',
        units: UNITS,
      });

      // Customers signed in with the server's key (no argon2 login each).
      const owner = crash.owner();
      const { users, tokens } = await demoBuyers(owner.kysely, crash.databaseUrl(), CUSTOMERS, 'crash');

      const admitted = new Map<string, string>(); // order id → customer
      const tryAll = async (from: number, to: number, during?: () => Promise<void>) => {
        let next = from;
        let fired = 0;
        const worker = async () => {
          while (next < to) {
            const i = next++;
            fired += 1;
            if (during && fired === Math.floor((to - from) / 3)) void during();
            try {
              const r = await call(
                base,
                'POST',
                `/api/v1/flash-sales/${saleId}/orders`,
                {
                  authorization: `Bearer ${tokens[i]}`,
                  'idempotency-key': `attempt-${i}`,
                },
                {},
              );
              if (r.status === 202) admitted.set(r.body.orderId, users[i]!);
            } catch {
              // The server died under this request: the buyer saw no answer.
            }
          }
        };
        await Promise.all(Array.from({ length: 24 }, worker));
      };

      // 1. kill -9 a third of the way into the first stampede.
      await tryAll(0, 120, async () => {
        await crash.kill9(first.server);
      });
      await first.server.exited;
      const second = await crash.start();
      base = second.base;

      // Reconciliation (the restarted server's own at start, and by hand): what the dead process
      // took from the gate without recording it comes back; the gate's units left match the record.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const reconciled = await mercato(['flash-sales', 'reconcile', saleId], crash.env());
      expect(reconciled.code, reconciled.errors).toBe(0);
      // Whoever repaired it (the server at start, usually: "reconciliation repaired the gate" with
      // each leaked unit in its log), the gate now agrees with the record.
      const repairedBy = [reconciled.output, second.server.output()].join('\n');
      expect(repairedBy).toMatch(/nothing to repair|repaired/);
      const line = /record (\d+) of 150 admitted, (\d+) left; gate (\d+) left/.exec(reconciled.output);
      expect(line, reconciled.output).not.toBeNull();
      expect(line![3], reconciled.output).toBe(line![2]);

      // 2. The gate's keys vanish (a Redis flush) a third of the way into the second.
      await tryAll(120, 240, async () => {
        const keys = await redis.keys(`${prefix}fs:*`);
        if (keys.length > 0) await redis.del(...keys);
      });

      // Every 202 has its order, and nothing is sold twice.
      const record = async () =>
        withSystem(owner.kysely, async (trx) => {
          const { rows } = await sql<{ order_id: string; customer_id: string; order_exists: boolean }>`
            select a.order_id, a.customer_id, exists (select 1 from orders.orders o where o.id = a.order_id) as order_exists
            from flash_sales.admissions a where a.campaign_id = ${saleId} and a.status <> 'released'`.execute(
            trx,
          );
          const { rows: c } = await sql<{
            admitted: number;
          }>`select admitted from flash_sales.campaigns where id = ${saleId}`.execute(trx);
          return { rows, admitted: c[0]!.admitted };
        });
      let now = await record();
      const recorded = new Set(now.rows.map((r) => r.order_id));
      for (const orderId of admitted.keys()) expect(recorded.has(orderId), `202 order ${orderId}`).toBe(true);
      expect(now.rows.every((r) => r.order_exists)).toBe(true);
      expect(now.rows.length).toBe(now.admitted);
      expect(now.admitted).toBeLessThanOrEqual(UNITS);
      expect(new Set(now.rows.map((r) => r.customer_id)).size).toBe(now.rows.length);

      // 4. The rest of the crowd: the sale sells exactly its units, no more, no fewer.
      await tryAll(240, CUSTOMERS);
      now = await record();
      expect(now.admitted).toBe(UNITS);
      expect(now.rows.length).toBe(UNITS);
      expect(new Set(now.rows.map((r) => r.customer_id)).size).toBe(UNITS);
      for (const orderId of admitted.keys())
        expect(recorded.has(orderId) || now.rows.some((r) => r.order_id === orderId)).toBe(true);
      const reserved = await withSystem(owner.kysely, async (trx) => {
        const { rows } = await sql<{ on_hand: number; reserved: number }>`
          select on_hand, reserved from inventory.items where variant_id = ${variant.id}`.execute(trx);
        return rows[0]!;
      });
      // 200 received: 150 held by the sale's orders, 50 available; nothing counted twice.
      expect(reserved).toEqual({ on_hand: 200, reserved: UNITS });
    }, 240_000);
  },
);
