import { randomUUID } from 'node:crypto';
import type { Order } from '../orders/index.ts';
import { together } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { CheckoutDeps } from './deps.ts';
import type { Held, SagaRunner } from './saga-runner.ts';
import { insertSaga, type Saga } from './saga-store.ts';
import type { CheckoutTrx } from './tables.ts';
import { watchdogEvent } from './watchdog.ts';

/**
 * A saga to start for an order its caller just made (or found waiting) in trx; or for one whose
 * insert the caller sent and has not awaited (`orderId` then names it): the saga's row goes out
 * right behind it.
 */
export type SagaStart = ({ order: Order } | { order: Promise<Order>; orderId: string }) & {
  cartId: string | null;
  payment: NonNullable<Saga['payment']>;
  /** The reservation whose units the order takes (a flash sale's pool); else available stock. */
  stockPool?: string | null;
  /** Who already checked the order (logged as the validate step's output). */
  validated: unknown;
};

/**
 * In the caller's transaction: the order's saga, held by the caller (its lease), its first
 * watchdog, and the steps that need no call out (reserve) run at once; the caller runs the rest
 * with `runner.run(tenantId, held.saga.id, held)` after its commit.
 */
export async function startSaga(
  deps: CheckoutDeps,
  runner: Pick<SagaRunner, 'leaseMs' | 'beginIn'>,
  trx: CheckoutTrx,
  tenantId: string,
  start: SagaStart,
  meta: EventMeta,
): Promise<Held> {
  const owner = randomUUID();
  const [order, saga] = await together([
    start.order,
    insertSaga(
      trx,
      {
        id: uuidv7(),
        tenantId,
        orderId: 'orderId' in start ? start.orderId : start.order.id,
        cartId: start.cartId,
        payment: start.payment,
        stockPool: start.stockPool ?? null,
      },
      { owner, until: new Date(Date.now() + runner.leaseMs) },
      start.validated,
    ),
  ]);
  const delay = deps.ctx.config.checkoutStepTimeoutMs + 1000;
  await deps.events.publish(trx, tenantId, 'order-events', [watchdogEvent(saga.id, order.id, delay)], meta);
  const begun = await runner.beginIn(trx, saga, order);
  return { owner, saga, order, begun };
}
