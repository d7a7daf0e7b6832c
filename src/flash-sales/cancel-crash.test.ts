import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { callServer as call } from '../cli/mercato-process.ts';
import { withSystem } from '../platform/db/index.ts';
import { crashServers, postgresClone, testDatabaseKind, until } from '../platform/testing/index.ts';
import { demoBuyers, serverSale } from './flash-test-fixtures.ts';

const WAITING = 400;
const STOCK = WAITING + 50;

// kill -9 of the real server while a sale's cancel is cancelling its waiting orders, batch by
// batch: the sale stays cancelled, no order is left half cancelled, and the restarted server
// finishes the cancel by itself (its window sweep), every unit back in stock once.
describe.runIf(testDatabaseKind() === 'postgres')(
  'a sale’s cancel survives kill -9 midway (PostgreSQL, real server)',
  () => {
    const crash = crashServers({ storage: postgresClone, env: { MERCATO_FLASH_IP_RATE: '100000000' } });

    const state = (saleId: string) =>
      withSystem(crash.owner().kysely, async (trx) => {
        const { rows } = await sql<{ admission: string; reason: string | null; order: string; n: number }>`
          select a.status as admission, a.release_reason as reason, o.status as order, count(*)::int as n
          from flash_sales.admissions a join orders.orders o on o.id = a.order_id
          where a.campaign_id = ${saleId} group by 1, 2, 3 order by 1, 2, 3`.execute(trx);
        const { rows: sale } = await sql<{
          cancelled: boolean;
          settled: boolean;
          admitted: number;
          released: number;
        }>`select cancelled_at is not null as cancelled, settled_at is not null as settled, admitted, released
          from flash_sales.campaigns where id = ${saleId}`.execute(trx);
        return { pairs: rows, sale: sale[0]! };
      });

    it('leaves no order half cancelled, and the restarted server finishes the cancel', async () => {
      const first = await crash.start();
      let base = first.base;
      const staff = await crash.adminHeaders(base);
      const { variant, saleId } = await serverSale(base, staff, {
        title: 'Cancelled drop',
        sku: 'CANCEL',
        onHand: STOCK,
        name: 'Cancelled sale',
        units: WAITING,
      });

      // Buyers signed in with the server's key (no argon2 login each), each admitted, none paying.
      const { tokens } = await demoBuyers(crash.owner().kysely, crash.databaseUrl(), WAITING, 'cancel');
      let next = 0;
      const buyer = async () => {
        while (next < WAITING) {
          const i = next++;
          const r = await call(
            base,
            'POST',
            `/api/v1/flash-sales/${saleId}/orders`,
            { authorization: `Bearer ${tokens[i]}`, 'idempotency-key': `cancel-${i}` },
            {},
          );
          expect(r.status, JSON.stringify(r.body)).toBe(202);
        }
      };
      await Promise.all(Array.from({ length: 24 }, buyer));
      expect((await state(saleId)).sale.admitted).toBe(WAITING);

      // The cancel, killed -9 once some of its batches committed and some not.
      const cancel = call(base, 'POST', `/api/v1/flash-sales/${saleId}/cancel`, staff).catch(() => undefined);
      let midway: Awaited<ReturnType<typeof state>> | undefined;
      await until(
        async () => {
          const now = await state(saleId);
          if (now.sale.admitted === 0) throw new Error('the cancel ended before the kill: no midway seen');
          if (now.sale.cancelled && now.sale.released > 0) midway = now;
          return midway !== undefined;
        },
        'some of the cancel’s batches committed',
        60_000,
      );
      await crash.kill9(first.server);
      await cancel;
      // Dead midway: the sale cancelled and settled; every admission waiting with its order
      // created, or released as cancelled with its order cancelled: none half done.
      const dead = await state(saleId);
      expect(dead.sale).toMatchObject({ cancelled: true, settled: true });
      expect(dead.sale.admitted).toBeGreaterThan(0);
      for (const p of dead.pairs) {
        expect([
          ['admitted', null, 'created'],
          ['released', 'cancelled', 'cancelled'],
        ]).toContainEqual([p.admission, p.reason, p.order]);
      }

      // The next run: the restarted server's window sweep finishes the cancel by itself.
      base = (await crash.start()).base;
      await until(async () => (await state(saleId)).sale.admitted === 0, 'the cancel finished', 120_000);
      const done = await state(saleId);
      expect(done.pairs).toEqual([
        { admission: 'released', reason: 'cancelled', order: 'cancelled', n: WAITING },
      ]);
      expect(done.sale).toMatchObject({ cancelled: true, settled: true, admitted: 0, released: WAITING });
      // Every unit back in stock once: no pool, no order's hold left.
      const item = await withSystem(crash.owner().kysely, async (trx) => {
        const { rows } = await sql<{ on_hand: number; reserved: number }>`
          select on_hand, reserved from inventory.items where variant_id = ${variant.id}`.execute(trx);
        return rows[0]!;
      });
      expect(item).toEqual({ on_hand: STOCK, reserved: 0 });
      const shown = await call(base, 'GET', `/api/v1/flash-sales/${saleId}`, staff);
      expect(shown.body).toMatchObject({ status: 'cancelled', admitted: 0, released: WAITING });
    }, 300_000);
  },
);
