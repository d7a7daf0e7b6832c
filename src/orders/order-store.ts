import { type Selectable, sql, type Updateable } from 'kysely';
import { together } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { insertOrders } from './insert-orders.ts';
import type { OrderPaymentStatus, OrderStatus } from './order-status.ts';
import {
  type NewOrder,
  type Order,
  type OrderHistoryEntry,
  toHistoryEntry,
  toLine,
  toOrder,
} from './order-view.ts';
import type { HistoryTable, OrdersTable, OrdersTrx } from './tables.ts';

/** The first number a tenant's orders get. */
export const FIRST_NUMBER = 1001;

/**
 * The tenant's next order number, taken in trx: the counter row stays locked until trx ends, so
 * concurrent creations queue here and get consecutive numbers; a rollback gives the number back.
 */
export async function nextNumber(trx: OrdersTrx, tenantId: string): Promise<number> {
  const row = await trx
    .insertInto('orders.counters')
    .values({ tenant_id: tenantId, last_number: FIRST_NUMBER })
    .onConflict((oc) =>
      oc
        .column('tenant_id')
        .doUpdateSet((eb) => ({ last_number: eb('orders.counters.last_number', '+', 1) })),
    )
    .returning('last_number')
    .executeTakeFirstOrThrow();
  return Number(row.last_number);
}

/** Inserts the order (status created), its lines and the first history entry, in one statement; returns the order. */
export async function insertOrder(
  trx: OrdersTrx,
  tenantId: string,
  number: number,
  input: NewOrder,
  actor: string,
): Promise<Order> {
  const [order] = await insertOrders(trx, tenantId, [{ input, number, actor }]);
  return order!;
}

/** Appends a status change to the order's audit trail. */
export async function insertHistory(
  trx: OrdersTrx,
  tenantId: string,
  orderId: string,
  from: OrderStatus | null,
  to: OrderStatus,
  actor: string,
  reason: string | null,
) {
  const row = await trx
    .insertInto('orders.history')
    .values({
      id: uuidv7(),
      tenant_id: tenantId,
      order_id: orderId,
      from_status: from,
      to_status: to,
      actor,
      reason,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toHistoryEntry(row);
}

/** The order with its lines and history, from its row. */
export async function withDetails(
  trx: OrdersTrx,
  tenantId: string,
  row: Selectable<OrdersTable>,
): Promise<Order> {
  // Both sent at once (one round trip on PostgreSQL).
  const [lines, history] = await together([
    trx
      .selectFrom('orders.lines')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('order_id', '=', row.id)
      .orderBy('id')
      .execute(),
    trx
      .selectFrom('orders.history')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('order_id', '=', row.id)
      .orderBy('at')
      .orderBy('id')
      .execute(),
  ]);
  return toOrder(row, lines.map(toLine), history.map(toHistoryEntry));
}

/** The order's row (locked FOR UPDATE when asked); id must be a UUID. */
export async function findOrderRow(
  trx: OrdersTrx,
  tenantId: string,
  orderId: string,
  lock = false,
): Promise<Selectable<OrdersTable> | undefined> {
  const query = trx
    .selectFrom('orders.orders')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('id', '=', orderId);
  return (lock ? query.forUpdate() : query).executeTakeFirst();
}

/** The order created under this idempotency scope and key, with the hash of the request that did. */
export async function findByIdempotency(
  trx: OrdersTrx,
  tenantId: string,
  scope: string,
  key: string,
): Promise<(Order & { requestHash: string }) | undefined> {
  const row = await trx
    .selectFrom('orders.orders')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('idempotency_scope', '=', scope)
    .where('idempotency_key', '=', key)
    .executeTakeFirst();
  if (!row) return undefined;
  return { ...(await withDetails(trx, tenantId, row)), requestHash: row.request_hash };
}

/**
 * Applies the changes to the order's row and stamps updated_at (and `stamp`, when named) with the
 * transaction's time; returns the row as it is now.
 */
export async function updateOrderRow(
  trx: OrdersTrx,
  tenantId: string,
  orderId: string,
  changes: Updateable<OrdersTable>,
  stamp?: 'completed_at' | 'cancelled_at',
): Promise<Selectable<OrdersTable>> {
  const row = await updateOrderRowIf(trx, tenantId, orderId, {}, changes, stamp);
  if (!row) throw new Error(`order ${orderId} vanished`);
  return row;
}

/** updateOrderRow while the row still has the `expected` status and payment status; undefined when it has not. */
export async function updateOrderRowIf(
  trx: OrdersTrx,
  tenantId: string,
  orderId: string,
  expected: { status?: OrderStatus; paymentStatus?: OrderPaymentStatus },
  changes: Updateable<OrdersTable>,
  stamp?: 'completed_at' | 'cancelled_at',
): Promise<Selectable<OrdersTable> | undefined> {
  const now = sql<Date>`now()`;
  let query = trx
    .updateTable('orders.orders')
    .set({ ...changes, updated_at: now, ...(stamp ? { [stamp]: now } : {}) })
    .where('tenant_id', '=', tenantId)
    .where('id', '=', orderId);
  if (expected.status) query = query.where('status', '=', expected.status);
  if (expected.paymentStatus) query = query.where('payment_status', '=', expected.paymentStatus);
  return query.returningAll().executeTakeFirst();
}

/**
 * updateOrderRowIf from `from` to the status in `changes`, and the history entry of that move, in
 * one statement; undefined (nothing written) when the row no longer has status `from`.
 */
export async function moveOrderRow(
  trx: OrdersTrx,
  tenantId: string,
  orderId: string,
  from: OrderStatus,
  changes: Updateable<OrdersTable> & { status: OrderStatus },
  stamp: 'completed_at' | 'cancelled_at' | undefined,
  history: { actor: string; reason: string | null },
): Promise<{ row: Selectable<OrdersTable>; entry: OrderHistoryEntry } | undefined> {
  const sets = [sql`updated_at = now()`, sql`status = ${changes.status}`];
  if (changes.payment_status !== undefined) sets.push(sql`payment_status = ${changes.payment_status}`);
  if (changes.failure_reason !== undefined) sets.push(sql`failure_reason = ${changes.failure_reason}`);
  if (changes.failure_message !== undefined) sets.push(sql`failure_message = ${changes.failure_message}`);
  if (changes.cancel_reason !== undefined) sets.push(sql`cancel_reason = ${changes.cancel_reason}`);
  if (stamp) sets.push(sql`${sql.ref(stamp)} = now()`);
  const result = await sql<Selectable<OrdersTable> & { h_id: string; h_at: Date | string }>`
    with moved as (
      update orders.orders set ${sql.join(sets)}
      where tenant_id = ${tenantId} and id = ${orderId} and status = ${from}
      returning *),
    logged as (
      insert into orders.history (id, tenant_id, order_id, from_status, to_status, actor, reason)
      select ${uuidv7()}, tenant_id, id, ${from}, ${changes.status}, ${history.actor}, ${history.reason}
      from moved
      returning id, at)
    select moved.*, logged.id as h_id, logged.at as h_at from moved, logged`.execute(trx);
  const found = result.rows[0];
  if (!found) return undefined;
  const { h_id, h_at, ...row } = found;
  const entry = toHistoryEntry({
    id: h_id,
    tenant_id: tenantId,
    order_id: orderId,
    from_status: from,
    to_status: changes.status,
    actor: history.actor,
    reason: history.reason,
    at: h_at,
  } as Selectable<HistoryTable>);
  return { row: row as Selectable<OrdersTable>, entry };
}
