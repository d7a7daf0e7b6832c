import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import {
  ORDER_PAYMENT_STATUSES,
  ORDER_STATUSES,
  type Order,
  type OrderPaymentStatus,
  type OrderStatus,
  orderStatus,
} from './index.ts';
import {
  createShop,
  type OrdersTestApp,
  orderEvents,
  placeOrder,
  type Shop,
  startOrdersApp,
} from './orders-test-fixtures.ts';

let t: OrdersTestApp;
let shop: Shop;

beforeAll(async () => {
  t = await startOrdersApp();
  shop = await createShop(t, 'fsm');
});
afterAll(() => t.close());

const LEGAL: Record<OrderStatus, OrderStatus[]> = {
  created: ['inventory_reserved', 'failed', 'cancelled'],
  inventory_reserved: ['payment_processing', 'failed', 'cancelled'],
  payment_processing: ['completed', 'failed', 'cancelled'],
  completed: ['cancelled'],
  failed: [],
  cancelled: [],
};

const EVENT: Record<OrderStatus, string> = {
  created: 'mercato.order.created',
  inventory_reserved: 'mercato.order.reserved',
  payment_processing: 'mercato.order.payment-processing',
  completed: 'mercato.order.completed',
  failed: 'mercato.order.failed',
  cancelled: 'mercato.order.cancelled',
};

/** The error fn throws, or undefined. */
async function errorOf(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('the order state machine', () => {
  it('allows exactly the transitions of the table, and failed and cancelled are final', () => {
    for (const from of ORDER_STATUSES) {
      for (const to of ORDER_STATUSES)
        expect(orderStatus.can(from, to), `${from} → ${to}`).toBe(LEGAL[from].includes(to));
    }
    expect(ORDER_STATUSES.filter((s) => orderStatus.isFinal(s))).toEqual(['failed', 'cancelled']);
  });

  it('over any random walk, moves only along the table and refuses the rest with 409 naming both states', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...ORDER_STATUSES), { maxLength: 30 }), (wanted) => {
        let state: OrderStatus = 'created';
        for (const to of wanted) {
          if (LEGAL[state].includes(to)) {
            orderStatus.assert(state, to);
            state = to;
          } else {
            expect(() => orderStatus.assert(state, to)).toThrow(`order cannot go from ${state} to ${to}`);
          }
        }
      }),
    );
  });
});

type Step = {
  to: OrderStatus;
  paymentStatus: OrderPaymentStatus | undefined;
  reason: string | undefined;
  known: 'none' | 'fresh' | 'stale';
};

const step: fc.Arbitrary<Step> = fc.record({
  to: fc.constantFrom(...ORDER_STATUSES),
  paymentStatus: fc.option(fc.constantFrom(...ORDER_PAYMENT_STATUSES), { nil: undefined }),
  reason: fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
  known: fc.constantFrom('none' as const, 'fresh' as const, 'stale' as const),
});

describe('transition against the stored order', () => {
  it('keeps the stored status, payment status, history and events equal to a model over random sequences', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 7 }), async (steps) => {
        const order = await placeOrder(t, shop.id);
        const model = {
          status: 'created' as OrderStatus,
          paymentStatus: 'not_paid' as OrderPaymentStatus,
          history: [{ from: null as OrderStatus | null, to: 'created' as OrderStatus }],
          events: ['mercato.order.created'],
        };
        let last: Order = order;
        for (const [i, s] of steps.entries()) {
          const failure =
            s.to === 'failed' ? { reason: 'payment_declined' as const, message: 'declined' } : undefined;
          const change = {
            actor: `test:${i}`,
            ...(s.paymentStatus ? { paymentStatus: s.paymentStatus } : {}),
            ...(s.reason ? { reason: s.reason } : {}),
            ...(failure ? { failure } : {}),
            // The caller's known order: none, the order as it stands, or a stale one (its creation).
            ...(s.known === 'fresh' ? { known: last } : s.known === 'stale' ? { known: order } : {}),
          };
          const run = () =>
            withTenant(t.ctx.db.kysely, shop.id, (trx) =>
              t.orders.transition(trx, shop.id, order.id, s.to, change),
            );
          if (LEGAL[model.status].includes(s.to)) {
            const moved = await run();
            model.history.push({ from: model.status, to: s.to });
            model.status = s.to;
            if (s.paymentStatus) model.paymentStatus = s.paymentStatus;
            model.events.push(EVENT[s.to]);
            if (s.to === 'failed') model.events.push('mercato.order.rejected');
            expect(moved.status).toBe(s.to);
            expect(moved.history.at(-1)).toMatchObject({
              actor: `test:${i}`,
              reason: s.reason ?? failure?.message ?? null,
            });
            // Built from a known order or read back, the answer is the order as stored.
            expect(moved).toEqual(await t.orders.getOrder(shop.id, order.id));
            last = moved;
          } else {
            const error = await errorOf(run);
            expect(error).toBeInstanceOf(AppError);
            expect(error).toMatchObject({
              status: 409,
              code: 'ILLEGAL_TRANSITION',
              extras: { resource: 'order', from: model.status, to: s.to },
            });
            expect((error as Error).message).toBe(`order cannot go from ${model.status} to ${s.to}`);
          }
          const stored = await t.orders.getOrder(shop.id, order.id);
          expect(stored!.status).toBe(model.status);
          expect(stored!.paymentStatus).toBe(model.paymentStatus);
          expect(stored!.history.map((h) => ({ from: h.from, to: h.to }))).toEqual(model.history);
          expect(stored!.completedAt !== null).toBe(model.history.some((h) => h.to === 'completed'));
          expect(stored!.cancelledAt !== null).toBe(model.status === 'cancelled');
        }
        const events = await orderEvents(t, shop.id, order.id);
        expect(events.map((e) => e.type)).toEqual(model.events);
      }),
      { numRuns: 25 },
    );
  });

  it('records failure and publishes mercato.order.rejected with the order, reason and message', async () => {
    const order = await placeOrder(t, shop.id);
    const failed = await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
      t.orders.transition(trx, shop.id, order.id, 'failed', {
        actor: 'saga:1',
        paymentStatus: 'failed',
        failure: { reason: 'out_of_stock', message: 'SKU-1: 2 requested, 1 available' },
      }),
    );
    expect(failed).toMatchObject({
      status: 'failed',
      paymentStatus: 'failed',
      failure: { reason: 'out_of_stock', message: 'SKU-1: 2 requested, 1 available' },
    });
    const events = await orderEvents(t, shop.id, order.id);
    expect(events.map((e) => e.type)).toEqual([
      'mercato.order.created',
      'mercato.order.failed',
      'mercato.order.rejected',
    ]);
    expect(events[1]!.data).toEqual(failed);
    expect(events[2]!.data).toEqual({
      order: failed,
      reason: 'out_of_stock',
      message: 'SKU-1: 2 requested, 1 available',
    });
  });

  it("keeps the reason of a cancellation as the order's cancelReason and in its history", async () => {
    const order = await placeOrder(t, shop.id);
    const cancelled = await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
      t.orders.transition(trx, shop.id, order.id, 'cancelled', {
        actor: 'user:x',
        reason: 'changed my mind',
      }),
    );
    expect(cancelled).toMatchObject({ status: 'cancelled', cancelReason: 'changed my mind', failure: null });
    expect(cancelled.history.at(-1)).toMatchObject({
      from: 'created',
      to: 'cancelled',
      reason: 'changed my mind',
    });
  });

  it('refuses a move to failed without a failure, and any move of an order of another tenant (404)', async () => {
    const order = await placeOrder(t, shop.id);
    const noFailure = await errorOf(() =>
      withTenant(t.ctx.db.kysely, shop.id, (trx) =>
        t.orders.transition(trx, shop.id, order.id, 'failed', { actor: 'saga:1' }),
      ),
    );
    expect(String(noFailure)).toContain('needs change.failure');
    const other = await createShop(t, 'fsm-other');
    const foreign = await errorOf(() =>
      withTenant(t.ctx.db.kysely, other.id, (trx) =>
        t.orders.transition(trx, other.id, order.id, 'cancelled', { actor: 'saga:1' }),
      ),
    );
    expect(foreign).toMatchObject({ code: 'NOT_FOUND', status: 404 });
    expect((await t.orders.getOrder(shop.id, order.id))!.status).toBe('created');
  });

  it('sets the payment status alone with mercato.order.updated, and a repeat changes nothing', async () => {
    const order = await placeOrder(t, shop.id);
    const set = (status: OrderPaymentStatus) =>
      withTenant(t.ctx.db.kysely, shop.id, (trx) =>
        t.orders.setPaymentStatus(trx, shop.id, order.id, status),
      );
    const authorized = await set('authorized');
    expect(authorized).toMatchObject({ status: 'created', paymentStatus: 'authorized' });
    await set('authorized');
    const events = await orderEvents(t, shop.id, order.id);
    expect(events.map((e) => e.type)).toEqual(['mercato.order.created', 'mercato.order.updated']);
    expect(events[1]!.data).toEqual(authorized);
  });
});
