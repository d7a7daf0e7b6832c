import type { Selectable } from 'kysely';
import { cursorId, cursorText, encodeCursor } from '../platform/http/index.ts';
import { uuidv7Floor } from '../platform/uuidv7.ts';
import type { OrderSummary } from './order-schemas.ts';
import type { OrderStatus } from './order-status.ts';
import { toOrder } from './order-view.ts';
import type { OrdersTable, OrdersTrx } from './tables.ts';

export type OrderFilters = {
  status?: OrderStatus | undefined;
  customerId?: string | undefined;
  createdFrom?: string | undefined;
  createdTo?: string | undefined;
};

export type Page = { limit: number; after: string | undefined };

/**
 * How far an order's id (UUIDv7: the milliseconds it was minted) may lie from its created_at (the
 * start of the transaction that inserted it). The checkout mints the id inside that transaction, a
 * flash sale at admission, moments before its batch's; an hour covers any transaction and any
 * clock skew between the app's hosts and the database's.
 */
const ID_TIME_SLACK_MS = 3_600_000;

const DEFAULT_LIMIT = 20;

/** Decodes ?limit and ?cursor (a cursor we did not issue is 400 INVALID_CURSOR). */
export function readPage(query: { limit?: number | undefined; cursor?: string | undefined }): Page {
  const limit = query.limit ?? DEFAULT_LIMIT;
  if (query.cursor === undefined) return { limit, after: undefined };
  return { limit, after: cursorId(cursorText(query.cursor)) };
}

function toSummary(row: Selectable<OrdersTable>): OrderSummary {
  const { lines: _lines, history: _history, ...summary } = toOrder(row, [], []);
  return summary;
}

/**
 * The query of one page: the tenant's orders matching the filters, newest first (ids are UUIDv7,
 * so by id descending), one more than the page to tell whether another follows.
 */
export function pageQuery(trx: OrdersTrx, tenantId: string, filters: OrderFilters, page: Page) {
  let query = trx.selectFrom('orders.orders').selectAll().where('tenant_id', '=', tenantId);
  if (filters.status !== undefined) query = query.where('status', '=', filters.status);
  if (filters.customerId !== undefined)
    query = query.where('customer_id', '=', filters.customerId.toLowerCase());
  // Each time bound also bounds the id, with the slack above: the page is read along an index by id
  // from the end of the range to its start, never through every order newer or older than the
  // range (where a created_at filter alone left it to the planner's guess).
  if (filters.createdFrom !== undefined) {
    query = query
      .where('created_at', '>=', filters.createdFrom)
      .where('id', '>=', uuidv7Floor(Date.parse(filters.createdFrom) - ID_TIME_SLACK_MS));
  }
  if (filters.createdTo !== undefined) {
    query = query
      .where('created_at', '<', filters.createdTo)
      .where('id', '<', uuidv7Floor(Date.parse(filters.createdTo) + ID_TIME_SLACK_MS));
  }
  if (page.after !== undefined) query = query.where('id', '<', page.after);
  return query.orderBy('id', 'desc').limit(page.limit + 1);
}

/** One page of the tenant's orders matching the filters (pageQuery); the cursor is the last id shown. */
export async function listOrders(
  trx: OrdersTrx,
  tenantId: string,
  filters: OrderFilters,
  page: Page,
): Promise<{ items: OrderSummary[]; nextCursor: string | null }> {
  const rows = await pageQuery(trx, tenantId, filters, page).execute();
  const items = rows.slice(0, page.limit).map(toSummary);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > page.limit && last ? encodeCursor(last.id) : null };
}
