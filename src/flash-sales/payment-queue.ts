import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Held } from '../checkout/index.ts';
import { withSystem, withTenant } from '../platform/db/index.ts';
import type { Breakers } from './breakers.ts';
import { poolKey } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import type { FlashSalesTrx } from './tables.ts';

/** Admissions one transaction hands to the saga. */
const BATCH = 64;
/** Sagas in flight at once, every tenant's together: the one cap on the provider's load. */
const SAGAS_IN_FLIGHT = 64;
/** Sagas of one tenant's batch in flight at once: a tenant whose payments are slow holds at most half the cap. */
const TENANT_SAGAS = 32;
/** How often the queue looks for work it was not told about (another process's, or after a crash). */
const SCAN_MS = 2000;
/** Tenants one round of the queue serves (a batch each). */
const TENANTS_PER_ROUND = 100;
/** Before any tenant id: the first round starts at the lowest. */
const NO_TENANT = '00000000-0000-0000-0000-000000000000';

/**
 * The payment queue: admitted orders with a payment token go through the checkout saga in
 * batches, highest priority first, then oldest. One transaction per batch takes up to 64 waiting
 * admissions (skip locked: every process drains at once without taking the same ones), starts
 * each order's saga (its units come from the order's reservation, made from the campaign's pool at
 * admission) and marks them paying; after the commit the sagas run through the payments breaker,
 * 32 of a batch at a time and 64 of all batches, while the next tenants' batches are taken: a
 * tenant's next batch waits for its last one's sagas, never another tenant's. The saga's outcome
 * comes back as order events (paid or released).
 */
export function createPaymentQueue(
  deps: FlashSalesDeps,
  breakers: Breakers,
  logger: Logger,
  options: { tenantsPerRound?: number } = {},
) {
  const tenantsPerRound = options.tenantsPerRound ?? TENANTS_PER_ROUND;
  // The last tenant a round served: the next round starts past it, wrapping around, so every
  // tenant with queued orders gets its batch in turn. Started from the lowest id each round, the
  // first tenantsPerRound tenants were served as long as they had orders queued, the rest waiting.
  let lastServed = NO_TENANT;
  const slots = createSlots(SAGAS_IN_FLIGHT);
  /** The batches whose sagas are running, by tenant: a tenant's next batch waits for its last. */
  const running = new Map<string, Promise<void>>();
  let draining: Promise<void> | undefined;
  let again = false;
  /** Wakes a drain waiting for a running batch to end: a kick (new orders, or the scan) came meanwhile. */
  let wake: (() => void) | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  /** The sagas a batch started, and how many admissions it took out of the queue without one. */
  /**
   * `careful`: each saga starts under a savepoint, and an order whose saga cannot start (its
   * payment key taken by another payment, a row that breaks a constraint) leaves the queue with
   * a warning instead of failing the batch: taken again after a batch that failed, so that one such
   * order, first in every batch, no longer held back every later order of the tenant until their
   * windows closed unpaid (its window's sweep, or its event, releases it).
   */
  async function takeBatch(tenantId: string, careful = false): Promise<{ helds: Held[]; dropped: number }> {
    return withTenant(deps.db, tenantId, async (anyTrx) => {
      const trx = anyTrx as FlashSalesTrx;
      // A sale's cancel closes its windows (pay_by set to its own now()) before it cancels the
      // orders. One that began after this transaction and committed before the row lock below sets
      // pay_by past this transaction's now(): the lock's recheck against the clock refuses it.
      const { rows } = await sql<{ order_id: string; campaign_id: string; payment: unknown }>`
        select a.order_id, a.campaign_id, a.payment
        from flash_sales.admissions a join flash_sales.campaigns c on c.id = a.campaign_id
        where a.status = 'admitted' and a.payment is not null and a.pay_by > now()
          and a.pay_by > clock_timestamp()
        order by case c.priority when 'urgent' then 0 when 'high' then 1 when 'normal' then 2 else 3 end,
          a.admitted_at
        limit ${BATCH}
        for update of a skip locked`.execute(trx);
      const helds: Held[] = [];
      const gone: string[] = [];
      for (const row of rows) {
        // Locked: a cancel of the order waits, or is seen.
        const order = await deps.orders.get(trx, tenantId, row.order_id, { lock: true });
        if (order?.status !== 'created') {
          gone.push(row.order_id);
          continue;
        }
        const payment = (typeof row.payment === 'string' ? JSON.parse(row.payment) : row.payment) as {
          provider: string;
          token: string;
        };
        const start = () =>
          deps.checkout.startSaga(
            trx,
            tenantId,
            {
              order,
              cartId: null,
              payment,
              stockPool: poolKey(row.campaign_id),
              validated: { checkedBy: 'flash-sale', campaignId: row.campaign_id },
            },
            { correlationId: order.correlationId ?? undefined },
          );
        if (!careful) {
          helds.push(await start());
          continue;
        }
        await sql`savepoint admission`.execute(trx);
        try {
          helds.push(await start());
          await sql`release savepoint admission`.execute(trx);
        } catch (error) {
          await sql`rollback to savepoint admission`.execute(trx);
          logger.warn(
            { err: error, tenantId, orderId: order.id },
            'flash-sales: an order’s saga could not start; it leaves the payment queue',
          );
          gone.push(order.id);
        }
      }
      // An order no longer waiting (cancelled meanwhile) keeps its admission as the order events
      // left it, but leaves the queue: it can never be paid, and left queued (its event on the way,
      // or dead-lettered) it took a place in every batch until its window closed, so that 64 such
      // admissions held back every later order of the tenant (their windows closed unpaid). Its
      // event, or the window's sweep, releases it.
      if (gone.length > 0) {
        await trx
          .updateTable('flash_sales.admissions')
          .set({ payment: null, updated_at: new Date() })
          .where('order_id', 'in', gone)
          .execute();
      }
      const started = helds.map((h) => h.order.id);
      if (started.length > 0) {
        await trx
          .updateTable('flash_sales.admissions')
          .set({ status: 'paying', payment: null, updated_at: new Date() })
          .where('order_id', 'in', started)
          .execute();
      }
      return { helds, dropped: gone.length };
    });
  }

  /** A batch's sagas, TENANT_SAGAS at a time, each holding one of the queue's slots while it runs. */
  async function runBatch(tenantId: string, helds: Held[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      for (let held = helds[next++]; held; held = helds[next++]) {
        await slots.take();
        const saga = held;
        await breakers
          .run('payments', async () => {
            const result = await deps.checkout.run(tenantId, saga.saga.id, saga);
            return result.state === 'stopped' ? result.saga : undefined;
          })
          .catch((error) =>
            logger.warn({ err: error, sagaId: saga.saga.id }, 'flash-sales: a saga run failed'),
          )
          .finally(() => slots.give());
      }
    };
    await Promise.all(Array.from({ length: Math.min(TENANT_SAGAS, helds.length) }, worker));
  }

  /** Up to tenantsPerRound tenants with orders queued, none with a batch still running, past lastServed. */
  const queuedTenants = (busy: string[]) =>
    withSystem(deps.db, async (trx) => {
      const { rows } = await sql<{ tenant_id: string }>`
        select tenant_id from flash_sales.admissions
        where status = 'admitted' and payment is not null and pay_by > now()
          and tenant_id <> all(${busy}::uuid[])
        group by tenant_id
        order by tenant_id > ${lastServed}::uuid desc, tenant_id
        limit ${tenantsPerRound}`.execute(trx);
      return rows.map((r) => r.tenant_id);
    });

  async function drain(): Promise<void> {
    try {
      for (;;) {
        again = false;
        const tenants = await queuedTenants([...running.keys()]);
        let took = 0;
        for (const tenantId of tenants) {
          // The next batch is taken once a slot is free, while the batches before it run.
          await slots.room();
          // While the provider fails, paid orders wait here (the stats show the queue and the breaker).
          if (stopped || breakers.state('payments') === 'open') return;
          // One tenant's batch that fails (an order whose saga cannot start) must not hold up the
          // others', nor its own other orders: it is taken again carefully (takeBatch), and a
          // batch that fails even so is logged and tried again on the next kick.
          const { helds, dropped } = await breakers
            .run('database', () => takeBatch(tenantId))
            .catch((error: unknown) => {
              if (breakers.state('database') === 'open') throw error;
              return breakers.run('database', () => takeBatch(tenantId, true));
            })
            .catch((error: unknown) => {
              if (breakers.state('database') === 'open') throw error;
              logger.warn(
                { err: error, tenantId },
                'flash-sales: a tenant’s payment batch failed; the others go on',
              );
              return { helds: [] as Held[], dropped: 0 };
            });
          // Admissions taken out of the queue count too: the next batch reads the ones behind them.
          took += helds.length + dropped;
          lastServed = tenantId;
          if (helds.length > 0) {
            running.set(
              tenantId,
              runBatch(tenantId, helds).finally(() => running.delete(tenantId)),
            );
          }
        }
        if (took === 0 && !again) {
          if (running.size === 0) return;
          // Nothing to take now but batches running: look again once one has ended, or at the
          // next kick (another tenant's orders must not wait for a slow tenant's batch to end).
          await Promise.race([
            ...running.values(),
            new Promise<void>((resolve) => {
              wake = resolve;
            }),
          ]);
          wake = undefined;
        }
      }
    } finally {
      await Promise.all(running.values());
    }
  }

  function kick(): void {
    if (stopped) return;
    if (draining) {
      again = true;
      wake?.();
      return;
    }
    draining = drain()
      .catch((error) => logger.warn({ err: error }, 'flash-sales: the payment queue stopped on an error'))
      .finally(() => {
        draining = undefined;
      });
  }

  return {
    /** Starts the scan for work no kick announced (another process's admissions, or after a crash). */
    start(): void {
      timer = setInterval(() => kick(), SCAN_MS);
      timer.unref();
      kick();
    },
    /** Drains soon (an admission with a token committed, or a customer paid). */
    kick,
    /** Stops taking batches and waits for every saga in flight. */
    async close(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      wake?.();
      await draining;
    },
  };
}

/**
 * The queue's slots for sagas in flight: `take` waits for one (first come, first served), `give`
 * hands it to the next waiting saga, and `room` waits until one is free with no saga waiting (a
 * batch then taken can start at once).
 */
function createSlots(cap: number) {
  let used = 0;
  const sagas: Array<() => void> = [];
  let roomy: Array<() => void> = [];
  return {
    async take(): Promise<void> {
      if (used < cap) {
        used += 1;
        return;
      }
      // Resolved by give(), which hands over its slot (used stays).
      await new Promise<void>((resolve) => sagas.push(resolve));
    },
    give(): void {
      const next = sagas.shift();
      if (next) {
        next();
        return;
      }
      used -= 1;
      const waiting = roomy;
      roomy = [];
      for (const resolve of waiting) resolve();
    },
    room(): Promise<void> {
      if (used < cap && sagas.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => roomy.push(resolve));
    },
  };
}
