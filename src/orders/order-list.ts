import type { Selectable } from 'kysely';
import { cursorId, cursorText, encodeCursor } from '../platform/http/index.ts';
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
 * One page of the tenant's orders, newest first (ids are UUIDv7, so by id descending), matching
 * the filters; the cursor is the last id shown.
 */
export async function listOrders(
  trx: OrdersTrx,
  tenantId: string,
  filters: OrderFilters,
  page: Page,
): Promise<{ items: OrderSummary[]; nextCursor: string | null }> {
  let query = trx.selectFrom('orders.orders').selectAll().where('tenant_id', '=', tenantId);
  if (filters.status !== undefined) query = query.where('status', '=', filters.status);
  if (filters.customerId !== undefined)
    query = query.where('customer_id', '=', filters.customerId.toLowerCase());
  if (filters.createdFrom !== undefined) query = query.where('created_at', '>=', filters.createdFrom);
  if (filters.createdTo !== undefined) query = query.where('created_at', '<', filters.createdTo);
  if (page.after !== undefined) query = query.where('id', '<', page.after);
  const rows = await query
    .orderBy('id', 'desc')
    .limit(page.limit + 1)
    .execute();
  const items = rows.slice(0, page.limit).map(toSummary);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > page.limit && last ? encodeCursor(last.id) : null };
}
