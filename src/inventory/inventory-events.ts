import type { DomainEvent, EventBus, EventMeta } from '../platform/events/index.ts';
import type { InventoryTrx } from './tables.ts';
import type { InventoryItem, Reservation } from './views.ts';

export const TOPIC = 'inventory-events';

export type ItemEventVerb = 'created' | 'adjusted' | 'low-stock' | 'stock-changed';
export type ReservationEventVerb = 'reserved' | 'released' | 'committed' | 'expired' | 'returned';

/** `hints` (in process only): `availableBefore`, the item's available count before the change. */
export const itemEvent = (
  verb: ItemEventVerb,
  item: InventoryItem,
  hints?: { availableBefore: number },
): DomainEvent => ({
  type: `mercato.inventory.${verb}`,
  subject: item.id,
  data: item,
  hints,
});

export const reservationEvent = (verb: ReservationEventVerb, reservation: Reservation): DomainEvent => ({
  type: `mercato.inventory.${verb}`,
  subject: reservation.key,
  data: reservation,
});

/**
 * `mercato.inventory.transferred`: units moved from one reservation to another (a flash sale's
 * pool into an order's reservation, or back). Data is both reservations as they are after the
 * move; subject the receiving one's key. No item event goes with it: the counters did not change.
 */
export const transferredEvent = (from: Reservation, to: Reservation): DomainEvent => ({
  type: 'mercato.inventory.transferred',
  subject: to.key,
  data: { from, to },
});

/** Publishes to the tenant's inventory-events in trx, so the events commit with the change. */
export async function publish(
  events: EventBus,
  trx: InventoryTrx,
  tenantId: string,
  list: DomainEvent[],
  meta?: EventMeta,
): Promise<void> {
  if (list.length === 0) return;
  await events.publish(trx, tenantId, TOPIC, list, meta);
}
