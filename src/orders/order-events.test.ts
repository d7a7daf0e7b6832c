import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../platform/db/index.ts';
import type { ReceivedEvent } from '../platform/events/index.ts';
import type { Order } from './index.ts';
import {
  createShop,
  newOrder,
  type OrdersTestApp,
  orderEvents,
  placeOrder,
  type Shop,
  startOrdersApp,
  until,
} from './orders-test-fixtures.ts';

let t: OrdersTestApp;
let shop: Shop;
const received: ReceivedEvent[] = [];

beforeAll(async () => {
  t = await startOrdersApp({}, [
    {
      name: 'test.order-events',
      topic: 'order-events',
      types: ['mercato.order.*'],
      handle: async (_trx, event) => {
        received.push(event);
      },
    },
  ]);
  shop = await createShop(t, 'orderevents');
});
afterAll(() => t.close());

const moveTo = (order: Order, to: Order['status'], extra: Record<string, unknown> = {}) =>
  withTenant(t.ctx.db.kysely, shop.id, (trx) =>
    t.orders.transition(trx, shop.id, order.id, to, {
      actor: 'saga:events',
      meta: { correlationId: 'corr-42' },
      ...extra,
    }),
  );

describe('order events', () => {
  it('publishes one event per change on order-events, each with the order as it is after the change', async () => {
    const created = await placeOrder(t, shop.id);
    const reserved = await moveTo(created, 'inventory_reserved');
    const processing = await moveTo(reserved, 'payment_processing', { paymentStatus: 'pending' });
    const captured = await withTenant(t.ctx.db.kysely, shop.id, (trx) =>
      t.orders.setPaymentStatus(trx, shop.id, created.id, 'captured'),
    );
    const completed = await moveTo(captured, 'completed');
    const cancelled = await moveTo(completed, 'cancelled', {
      reason: 'refunded on request',
      paymentStatus: 'refunded',
    });
    const events = await orderEvents(t, shop.id, created.id);
    expect(events.map((e) => [e.type, e.data])).toEqual([
      ['mercato.order.created', created],
      ['mercato.order.reserved', reserved],
      ['mercato.order.payment-processing', processing],
      ['mercato.order.updated', captured],
      ['mercato.order.completed', completed],
      ['mercato.order.cancelled', cancelled],
    ]);
    expect(events.every((e) => e.subject === created.id)).toBe(true);
    expect(completed.completedAt).not.toBeNull();
    expect(cancelled).toMatchObject({ completedAt: completed.completedAt, paymentStatus: 'refunded' });
    expect(cancelled.history.map((h) => h.to)).toEqual([
      'created',
      'inventory_reserved',
      'payment_processing',
      'completed',
      'cancelled',
    ]);
  });

  it('delivers them to subscribers with the correlation id of the change', async () => {
    const order = await placeOrder(t, shop.id);
    await moveTo(order, 'inventory_reserved');
    await until(
      () => received.filter((e) => e.subject === order.id).length === 2,
      'the created and reserved events',
    );
    const mine = received.filter((e) => e.subject === order.id);
    expect(mine.map((e) => e.type).sort()).toEqual(['mercato.order.created', 'mercato.order.reserved']);
    const reserved = mine.find((e) => e.type === 'mercato.order.reserved')!;
    expect(reserved).toMatchObject({ tenantid: shop.id, correlationid: 'corr-42' });
    expect((reserved.data as Order).status).toBe('inventory_reserved');
  });

  it('publishes nothing when the transaction of the change rolls back', async () => {
    const order = await placeOrder(t, shop.id);
    await withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
      await t.orders.transition(trx, shop.id, order.id, 'cancelled', { actor: 'saga:events' });
      throw new Error('the saga log write failed');
    }).catch(() => undefined);
    const events = await orderEvents(t, shop.id, order.id);
    expect(events.map((e) => e.type)).toEqual(['mercato.order.created']);
    expect((await t.orders.getOrder(shop.id, order.id))!.status).toBe('created');
    const before = (await orderEvents(t, shop.id)).length;
    await withTenant(t.ctx.db.kysely, shop.id, async (trx) => {
      await t.orders.create(trx, shop.id, newOrder());
      throw new Error('the saga failed to start');
    }).catch(() => undefined);
    expect((await orderEvents(t, shop.id)).length).toBe(before);
  });
});
