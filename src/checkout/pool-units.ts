import type { Order } from '../orders/index.ts';
import { withTenant } from '../platform/db/index.ts';
import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import type { CheckoutDeps } from './deps.ts';

/** A reservation (or pool) that holds nothing any more, or is not there. */
const GONE = ['RESERVATION_NOT_ACTIVE', 'NOT_FOUND'];
const gone = (error: unknown) => error instanceof AppError && GONE.includes(error.code);

/**
 * The side reservation through which a committed order's units, put back on hand, move into the
 * pool: one per order, so the move is made once whoever makes it (flash sales' units-back.ts
 * `returnSoldUnits` names the same key for the same move, and finds it made).
 */
export const refundSideKey = (pool: string, orderId: string) => `${pool}:refund:${orderId}`;

/**
 * Undoes the reservation `key` of an order whose units came from `pool` (a flash sale's), in one
 * transaction, and answers where its units went (the compensation's logged result):
 * - active (the confirm step did not commit it): all of it back into the pool while the pool is
 *   open (`returned-to-pool`), else released to available stock (`released`);
 * - committed (confirm got that far, then the order failed or was cancelled, refunded): back on
 *   hand (`returned`) and, while the pool is open, from there into the pool (`returned-to-pool`),
 *   so the next buyer of the sale gets them;
 * - already undone (released, expired): as found; none at all: `none`.
 * Run again (a crash, a retry) it moves nothing twice: a return is idempotent, the side
 * reservation is the order's own, and a reservation that holds nothing moves nothing.
 */
export function undoPoolReservation(
  deps: CheckoutDeps,
  tenantId: string,
  order: Pick<Order, 'id' | 'lines'>,
  key: string,
  pool: string,
  actor: string,
  meta: EventMeta,
): Promise<string> {
  return withTenant(deps.db, tenantId, async (trx) => {
    const inventory = deps.inventory.within(trx);
    try {
      // A committed reservation comes back on hand (status returned; again: the same answer).
      await inventory.returnStock(tenantId, key, actor, meta);
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      if (error.code === 'NOT_FOUND') return 'none';
      if (error.code !== 'RESERVATION_NOT_ACTIVE') throw error;
      if (error.extras['reservationStatus'] === 'active') {
        try {
          await inventory.transfer(tenantId, { from: key, to: pool, actor }, meta);
          return 'returned-to-pool';
        } catch (moveError) {
          // The pool is closed (the sale ended): to available stock.
          if (!gone(moveError)) throw moveError;
        }
      }
      // Released or expired already (or expiring now): nothing is held.
      return (await inventory.release(tenantId, key, actor, meta)).status;
    }
    const side = refundSideKey(pool, order.id);
    const lines = order.lines.map((l) => ({ variantId: l.variantId, quantity: l.quantity }));
    try {
      // Taken from the units just put back (a replay finds it as an earlier attempt left it).
      await inventory.reserve(tenantId, { key: side, lines, ttlSeconds: 60, actor }, meta);
    } catch (error) {
      // Backordered stock whose return still leaves too little: the units stay on hand.
      if (error instanceof AppError && error.code === 'INSUFFICIENT_STOCK') return 'returned';
      throw error;
    }
    try {
      // A side that holds nothing any more (an earlier attempt moved it) moves nothing.
      const to = await inventory.transfer(tenantId, { from: side, to: pool, actor }, meta);
      if (to.status === 'active') return 'returned-to-pool';
    } catch (error) {
      if (!gone(error)) throw error;
    }
    // The pool is closed: what the side holds goes back to available stock.
    await inventory.release(tenantId, side, actor, meta);
    return 'returned';
  });
}
