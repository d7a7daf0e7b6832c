import type { EventBus } from '../platform/events/index.ts';
import { cursorId, cursorText, encodeCursor, type TenantResolver } from '../platform/http/index.ts';
import type { ReservationService } from './reservation-service.ts';
import type { InventoryDb } from './tables.ts';

/** What the inventory's routes need. */
export type InventoryDeps = {
  db: InventoryDb;
  events: EventBus;
  resolveTenant: TenantResolver;
  reservations: ReservationService;
  /**
   * The catalog's status of a product (none: no such product). Given, a shopper asking a product's
   * availability gets it for active products only, as the catalog shows them.
   */
  productStatus?: ((tenantId: string, productId: string) => Promise<string | undefined>) | undefined;
};

/** Who made a change: `user:<id>` or `key:<id>`. */
export { actorOf } from '../platform/http/index.ts';

/** Decodes ?limit and ?cursor (a cursor we did not issue is 400 INVALID_CURSOR). */
export function readPage(query: { limit?: number | undefined; cursor?: string | undefined }) {
  const limit = query.limit ?? 20;
  if (query.cursor === undefined) return { limit, after: undefined };
  return { limit, after: cursorId(cursorText(query.cursor)) };
}

/** A page from rows fetched with limit + 1, ordered by id. */
export function toPage<T extends { id: string }>(rows: T[], limit: number) {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}
