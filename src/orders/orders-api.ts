import type { Transaction, Updateable } from 'kysely';
import type { DomainEvent, EventBus, EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import { insertOrders } from './insert-orders.ts';
import { checkNewOrder } from './order-checks.ts';
import { ORDER_UPDATED, orderEvent, publish, rejectedEvent, STATUS_EVENT_TYPES } from './order-events.ts';
import {
  ORDER_FAILURE_REASONS,
  ORDER_PAYMENT_STATUSES,
  type OrderFailureReason,
  type OrderPaymentStatus,
  type OrderStatus,
  orderStatus,
} from './order-status.ts';
import {
  findByIdempotency,
  findOrderRow,
  insertHistory,
  insertOrder,
  moveOrderRow,
  nextNumber,
  updateOrderRow,
  updateOrderRowIf,
  withDetails,
} from './order-store.ts';
import { type NewOrder, type Order, toOrder } from './order-view.ts';
import type { OrdersTable, OrdersTrx } from './tables.ts';

/** What a transition changes besides the status. */
export type OrderChange = {
  /** Who moves the order, for the history: `user:<id>`, `key:<id>`, `saga:<id>`, `system`. */
  actor: string;
  paymentStatus?: OrderPaymentStatus;
  /** Why it failed; required to move to failed. */
  failure?: { reason: OrderFailureReason; message: string };
  /** Why, in words: kept in the history (and as the order's cancelReason when it is cancelled). */
  reason?: string;
  meta?: EventMeta;
  /**
   * The order as the caller last had it (the saga's runner, which alone moves its order): when
   * the row still has that status, its lines and history are not read back. Otherwise ignored.
   */
  known?: Order;
  /** In process only, on the status event: what lets a subscriber skip it (DomainEvent.hints). */
  hints?: DomainEvent['hints'];
};

/**
 * The functions the checkout saga calls inside its own transactions (a withTenant transaction of
 * the tenant), so its saga log and the order's change commit together.
 */
export type OrdersApi = {
  /**
   * Inserts the order (status created) with its lines; publishes mercato.order.created. Its number
   * is `number` (from takeNumber), else taken in trx (the tenant's counter row then stays locked
   * until trx ends: concurrent creations queue there).
   */
  create(
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx: Transaction<any>,
    tenantId: string,
    input: NewOrder,
    meta?: EventMeta,
    number?: number,
  ): Promise<Order>;
  /**
   * Many orders at once, as create makes one, in three statements' worth of one (insert-orders.ts)
   * whatever their number: the orders, their lines and their first history entries; one publish of
   * their created events. `numbers[i]` is inputs[i]'s (from takeNumber), `metas[i]` its request's
   * (the inputs of a batch come from several). A key already used fails the whole call with
   * unique_violation, as create does.
   */
  createMany(
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx: Transaction<any>,
    tenantId: string,
    inputs: NewOrder[],
    numbers: number[],
    metas?: (EventMeta | undefined)[],
  ): Promise<Order[]>;
  /**
   * The tenant's next order number, in a short transaction of its own (call it outside any):
   * concurrent callers share one. A number whose order is not made stays unused (a gap).
   */
  takeNumber(tenantId: string): Promise<number>;
  /** The order created under this idempotency scope and key, with its request hash. */
  findByIdempotencyKey(
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx: Transaction<any>,
    tenantId: string,
    scope: string,
    key: string,
  ): Promise<(Order & { requestHash: string }) | undefined>;
  /** One order; `lock` takes its row lock (for update) first. */
  get(
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx: Transaction<any>,
    tenantId: string,
    orderId: string,
    options?: { lock?: boolean },
  ): Promise<Order | undefined>;
  /**
   * Takes the order's row lock (for update; 404 when the tenant has no such order) without
   * reading its lines and history: for a caller that locks rows of its own after it, in the order
   * a cancel takes them (the order, then its saga).
   */
  lock(
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx: Transaction<any>,
    tenantId: string,
    orderId: string,
  ): Promise<void>;
  /**
   * Moves the order (row locked; 409 ILLEGAL_TRANSITION when the machine forbids it), records
   * history, sets paymentStatus/failure when given, stamps completedAt/cancelledAt, publishes the
   * event of the new status (failed also publishes mercato.order.rejected with data
   * { order, reason, message }).
   */
  transition(
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx: Transaction<any>,
    tenantId: string,
    orderId: string,
    to: OrderStatus,
    change: OrderChange,
  ): Promise<Order>;
  /** Sets the payment status alone (publishes mercato.order.updated). */
  setPaymentStatus(
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx: Transaction<any>,
    tenantId: string,
    orderId: string,
    status: OrderPaymentStatus,
    meta?: EventMeta,
    /** As OrderChange.known. */
    known?: Order,
  ): Promise<Order>;
};

const notFound = (orderId: string) => new AppError('NOT_FOUND', `order ${orderId} not found`);

/** The row of an order to change, locked; 404 when the tenant has no such order. */
async function lockedRow(trx: OrdersTrx, tenantId: string, orderId: string) {
  const row = isUuid(orderId) ? await findOrderRow(trx, tenantId, orderId.toLowerCase(), true) : undefined;
  if (!row) throw notFound(orderId);
  return row;
}

/** Throws on a change no caller should make (a bug, not an input): the database would refuse it anyway. */
function checkChange(orderId: string, to: OrderStatus, change: OrderChange): void {
  const wrong = (what: string) => new Error(`order ${orderId}: ${what}`);
  if (typeof change.actor !== 'string' || change.actor.length < 1 || change.actor.length > 200)
    throw wrong('change.actor must be 1 to 200 characters');
  if (change.paymentStatus !== undefined && !ORDER_PAYMENT_STATUSES.includes(change.paymentStatus))
    throw wrong(`unknown payment status ${String(change.paymentStatus)}`);
  if (change.failure && !ORDER_FAILURE_REASONS.includes(change.failure.reason))
    throw wrong(`unknown failure reason ${String(change.failure.reason)}`);
  if (change.failure && typeof change.failure.message !== 'string')
    throw wrong('change.failure.message must be text');
  if (change.reason !== undefined && typeof change.reason !== 'string')
    throw wrong('change.reason must be text');
  if (to === 'failed' && !change.failure) throw wrong('a transition to failed needs change.failure');
}

/** The orders API on an event bus; takeNumber hands out numbers (orderNumbers). */
export function ordersApi(events: EventBus, takeNumber: (tenantId: string) => Promise<number>): OrdersApi {
  const api: OrdersApi = {
    takeNumber,
    async create(anyTrx, tenantId, input, meta, given) {
      const trx = anyTrx as OrdersTrx;
      checkNewOrder(input);
      // Taken here, last but one: the counter row stays locked from here to the commit.
      const number = given ?? (await nextNumber(trx, tenantId));
      // A second order under the same idempotency scope and key fails here with PostgreSQL's
      // unique_violation (23505), unchanged: the caller's transaction is aborted anyway, and the
      // saga tells it from other errors by that code to replay the order the first request made.
      const order = await insertOrder(trx, tenantId, number, input, input.actor ?? 'checkout');
      await publish(events, trx, tenantId, [orderEvent(STATUS_EVENT_TYPES.created, order)], meta);
      return order;
    },

    async createMany(anyTrx, tenantId, inputs, numbers, metas = []) {
      for (const input of inputs) checkNewOrder(input);
      const orders = await insertOrders(
        anyTrx as OrdersTrx,
        tenantId,
        inputs.map((input, i) => ({ input, number: numbers[i]!, actor: input.actor ?? 'checkout' })),
      );
      await publish(
        events,
        anyTrx as OrdersTrx,
        tenantId,
        orders.map((order, i) => ({ ...orderEvent(STATUS_EVENT_TYPES.created, order), meta: metas[i] })),
        undefined,
      );
      return orders;
    },

    findByIdempotencyKey: (trx, tenantId, scope, key) =>
      findByIdempotency(trx as OrdersTrx, tenantId, scope, key),

    async get(anyTrx, tenantId, orderId, options = {}) {
      if (!isUuid(orderId)) return undefined;
      const trx = anyTrx as OrdersTrx;
      const row = await findOrderRow(trx, tenantId, orderId.toLowerCase(), options.lock ?? false);
      return row ? withDetails(trx, tenantId, row) : undefined;
    },

    async lock(anyTrx, tenantId, orderId) {
      await lockedRow(anyTrx as OrdersTrx, tenantId, orderId);
    },

    async transition(anyTrx, tenantId, orderId, to, change) {
      const trx = anyTrx as OrdersTrx;
      const { known } = change;
      const usable = known?.id === orderId && orderStatus.can(known.status, to);
      // With a known order, the status guard of the update stands in for the row lock and the check.
      const row = usable ? undefined : await lockedRow(trx, tenantId, orderId);
      if (row) orderStatus.assert(row.status, to);
      const from = row?.status ?? known!.status;
      checkChange(orderId, to, change);
      const set: Updateable<OrdersTable> = { status: to };
      if (change.paymentStatus !== undefined) set.payment_status = change.paymentStatus;
      if (change.failure) {
        set.failure_reason = change.failure.reason;
        set.failure_message = change.failure.message.slice(0, 2000);
      }
      if (to === 'cancelled') set.cancel_reason = change.reason?.slice(0, 2000) ?? null;
      const stamp = to === 'completed' ? 'completed_at' : to === 'cancelled' ? 'cancelled_at' : undefined;
      const reason = change.reason ?? change.failure?.message ?? null;
      const history = { actor: change.actor, reason: reason?.slice(0, 2000) ?? null };
      let order: Order;
      if (row) {
        const updated = await updateOrderRow(trx, tenantId, orderId, set, stamp);
        await insertHistory(trx, tenantId, orderId, from, to, history.actor, history.reason);
        order = await withDetails(trx, tenantId, updated);
      } else {
        const moved = await moveOrderRow(
          trx,
          tenantId,
          orderId,
          from,
          { ...set, status: to },
          stamp,
          history,
        );
        // The known order was stale: the long way, which locks, checks and reads back.
        if (!moved) return api.transition(trx, tenantId, orderId, to, { ...change, known: undefined });
        order = toOrder(moved.row, known!.lines, [...known!.history, moved.entry]);
      }
      const list: DomainEvent[] = [{ ...orderEvent(STATUS_EVENT_TYPES[to], order), hints: change.hints }];
      if (to === 'failed') list.push(rejectedEvent(order, change.failure!));
      await publish(events, trx, tenantId, list, change.meta);
      return order;
    },

    async setPaymentStatus(anyTrx, tenantId, orderId, status, meta, known) {
      const trx = anyTrx as OrdersTrx;
      if (!ORDER_PAYMENT_STATUSES.includes(status))
        throw new Error(`unknown payment status ${String(status)}`);
      if (known?.id === orderId) {
        if (known.paymentStatus === status) return known;
        const updated = await updateOrderRowIf(
          trx,
          tenantId,
          orderId,
          { status: known.status, paymentStatus: known.paymentStatus },
          { payment_status: status },
        );
        if (updated) {
          const order = toOrder(updated, known.lines, known.history);
          await publish(events, trx, tenantId, [orderEvent(ORDER_UPDATED, order)], meta);
          return order;
        }
      }
      const row = await lockedRow(trx, tenantId, orderId);
      // A repeated call (a retried saga step) changes nothing and announces nothing.
      if (row.payment_status === status) return withDetails(trx, tenantId, row);
      const updated = await updateOrderRow(trx, tenantId, row.id, { payment_status: status });
      const order = await withDetails(trx, tenantId, updated);
      await publish(events, trx, tenantId, [orderEvent(ORDER_UPDATED, order)], meta);
      return order;
    },
  };
  return api;
}
