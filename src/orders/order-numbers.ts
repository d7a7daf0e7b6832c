import { sql } from 'kysely';
import { FIRST_NUMBER } from './order-store.ts';
import type { OrdersDb } from './tables.ts';

type Waiting = { resolve(n: number): void; reject(error: unknown): void };

/**
 * Hands out a tenant's order numbers in short statements of their own, so order creations do not
 * queue on the counter row for as long as they run: the requests that arrive while one statement
 * is out share the next, which moves the counter by their count (the WAL's group
 * commit, for numbers). Unique and increasing per process; a number whose order is never made
 * (its creation failed) is a gap, as in Shopify's numbering.
 */
export function orderNumbers(db: OrdersDb): (tenantId: string) => Promise<number> {
  const queues = new Map<string, Waiting[]>();
  const busy = new Set<string>();

  async function flush(tenantId: string): Promise<void> {
    const group = queues.get(tenantId) ?? [];
    queues.delete(tenantId);
    busy.add(tenantId);
    try {
      // One statement (migration 0040): it sets the tenant for row-level security itself. Its
      // commit does not wait for the WAL's flush (about 2 ms on a VM's disk, on the checkout's
      // path): an order holding a number commits synchronously after it, which flushes this
      // commit first; a crash of PostgreSQL before that loses only numbers no order kept.
      const { rows } = await sql<{ last: string | number }>`
        select orders.take_numbers(${tenantId}, ${group.length}, ${FIRST_NUMBER}) as last
        from (select set_config('synchronous_commit', 'off', true)) unflushed`.execute(db);
      const last = Number(rows[0]?.last);
      for (const [i, w] of group.entries()) w.resolve(last - group.length + 1 + i);
    } catch (error) {
      for (const w of group) w.reject(error);
    } finally {
      busy.delete(tenantId);
      if (queues.has(tenantId)) void flush(tenantId);
    }
  }

  return (tenantId) =>
    new Promise<number>((resolve, reject) => {
      const queue = queues.get(tenantId);
      if (queue) queue.push({ resolve, reject });
      else queues.set(tenantId, [{ resolve, reject }]);
      // After the calls of this turn (a batch asks for all its numbers at once): one transaction
      // serves them all, instead of the first call alone and the rest in a second.
      if (!busy.has(tenantId) && !queue) queueMicrotask(() => void flush(tenantId));
    });
}
