import type { Kysely } from 'kysely';
import { withTenant } from '../platform/db/index.ts';
import type { DomainEvent, EventBus, EventMeta } from '../platform/events/index.ts';
import type { AppError } from '../platform/http/index.ts';
import { publish } from './inventory-events.ts';
import { applyOps, type BatchState } from './reservation-engine.ts';
import { type OpResult, opKeys, type ReservationOp, type ReservationState } from './reservation-ops.ts';
import { lockExpired, lockItems, lockReservations } from './reservation-store.ts';
import { writeBatch } from './reservation-write.ts';
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
  const now = new Date();
  let locked: ReservationState[];
  if (expired > 0) {
    locked = await lockExpired(trx, expired);
    entries = locked.map((r) => ({ op: { kind: 'expire', key: r.key, actor: 'system' }, meta: undefined }));
  } else {
    // A transfer locks both its reservations: all keys in one statement, in key order.
    locked = await lockReservations(trx, tenantId, [...new Set(entries.flatMap((e) => opKeys(e.op)))].sort());
  }
  const variantIds = new Set<string>();
  for (const { op } of entries) {
    if (op.kind === 'reserve') for (const line of op.lines) variantIds.add(line.variantId);
  }
  const itemIds = new Set(locked.flatMap((r) => r.lines.map((l) => l.itemId)));
  const state: BatchState = {
    tenantId,
    now,
    items: await lockItems(trx, tenantId, [...variantIds], [...itemIds]),
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
