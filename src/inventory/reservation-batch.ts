import type { Kysely } from 'kysely';
import { together, withTenant } from '../platform/db/index.ts';
import type { DomainEvent, EventBus, EventMeta } from '../platform/events/index.ts';
import type { AppError } from '../platform/http/index.ts';
import { publish } from './inventory-events.ts';
import { applyOps, type BatchState } from './reservation-engine.ts';
import {
  type ItemState,
  type OpResult,
  opKeys,
  type ReservationOp,
  type ReservationState,
} from './reservation-ops.ts';
import { lockExpired, lockItems, lockReservations } from './reservation-store.ts';
import { flushWrites, writeBatch } from './reservation-write.ts';
import type { InventoryTables, InventoryTrx } from './tables.ts';

export type BatchEntry = { op: ReservationOp; meta: EventMeta | undefined };

export type BatchResult = {
  answers: (OpResult | { error: AppError })[];
  /** The earliest expiry among the active reservations the batch wrote (to wake the sweeper). */
  earliestExpiry: Date | undefined;
};

/**
 * Runs reservation operations of one tenant in ONE transaction: locks their reservations (key
 * order; a transfer's `from` and `to`) and every item they touch (id order) once, applies the
 * operations in order against running counters, writes the summed changes in a few statements,
 * records the ledger and publishes the events, then commits. `expired` > 0 makes it the
 * sweeper's batch instead: up to that many active reservations past their expiry, skipping rows
 * other transactions hold.
 */
export function runBatch(
  db: Kysely<InventoryTables>,
  events: EventBus,
  tenantId: string,
  entries: BatchEntry[],
  expired = 0,
): Promise<BatchResult> {
  return withTenant(db, tenantId, (trx) => runBatchIn(trx, events, tenantId, entries, expired));
}

/** runBatch in the caller's transaction of `tenantId` (withTenant): its operations commit with the caller's change. */
export async function runBatchIn(
  trx: InventoryTrx,
  events: EventBus,
  tenantId: string,
  entries: BatchEntry[],
  expired = 0,
): Promise<BatchResult> {
  // An operation before this one in the caller's transaction left its write for the commit.
  const flushed = flushWrites(trx);
  if (flushed) await flushed;
  const now = new Date();
  const variantIds = new Set<string>();
  for (const { op } of entries) {
    if (op.kind === 'reserve') for (const line of op.lines) variantIds.add(line.variantId);
  }
  let locked: ReservationState[];
  let items: Map<string, ItemState>;
  if (expired > 0) {
    locked = await lockExpired(trx, expired);
    entries = locked.map((r) => ({ op: { kind: 'expire', key: r.key, actor: 'system' }, meta: undefined }));
    const held = locked.flatMap((r) => r.lines.map((l) => l.itemId));
    items = await lockItems(trx, tenantId, [], [...new Set(held)]);
  } else {
    // A transfer locks both its reservations: all keys in one statement, in key order. The items
    // their lines hold are locked by the statement sent right behind it (one round trip), which
    // runs once those reservations are locked, so their lines stand.
    const keys = [...new Set(entries.flatMap((e) => opKeys(e.op)))].sort();
    [locked, items] = await together([
      lockReservations(trx, tenantId, keys),
      lockItems(trx, tenantId, [...variantIds], [], keys),
    ]);
    // A key whose reservation another transaction created after the lock's first look (found by
    // lockReservations' second one): its items, when not locked yet. Locked out of id order, so
    // without waiting: one another transaction holds fails the batch (55P03), which runs again
    // (reservation-batcher) and then finds that reservation in its first look.
    const missing = locked.flatMap((r) => r.lines.map((l) => l.itemId)).filter((id) => !items.has(id));
    if (missing.length > 0) {
      const late = await lockItems(trx, tenantId, [], [...new Set(missing)], [], true);
      for (const [id, item] of late) items.set(id, item);
    }
  }
  const state: BatchState = {
    tenantId,
    now,
    items,
    reservations: new Map(locked.map((r) => [r.key, r])),
  };
  const outcome = applyOps(
    state,
    entries.map((e) => e.op),
  );
  await writeBatch(trx, state, outcome);
  await publishBatch(events, trx, tenantId, entries, outcome.events);
  let earliestExpiry: Date | undefined;
  for (const r of state.reservations.values()) {
    if (
      r.status === 'active' &&
      (r.fresh || r.changed) &&
      (!earliestExpiry || r.expiresAt < earliestExpiry)
    ) {
      earliestExpiry = r.expiresAt;
    }
  }
  return { answers: outcome.answers, earliestExpiry };
}

/**
 * The batch's events in ONE publish (one outbox write, whatever the batch's size), each with the
 * meta (correlation id, traceparent) of the request whose operation made it.
 */
async function publishBatch(
  bus: EventBus,
  trx: InventoryTrx,
  tenantId: string,
  entries: BatchEntry[],
  perOp: DomainEvent[][],
): Promise<void> {
  const events = perOp.flatMap((made, i) => made.map((event) => ({ ...event, meta: entries[i]?.meta })));
  if (events.length === 0) return;
  await publish(bus, trx, tenantId, events, undefined);
}
