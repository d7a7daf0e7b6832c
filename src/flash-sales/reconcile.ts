import { withTenant } from '../platform/db/index.ts';
import { toAdmission } from './admission-store.ts';
import { gateTtl, getCampaign, statusOf } from './campaign-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import { dedupeKey, type GateState } from './gate.ts';
import type { FlashSalesTrx } from './tables.ts';

/** One repair the reconciliation made. */
export type Repair =
  | {
      kind: 'leaked-unit';
      customerId: string;
      key: string;
      orderId: string;
      quantity: number;
      /** The record has the key's admission released (its units had not come back to the gate): the key stays, holding nothing. */
      released?: true;
    }
  | { kind: 'remaining-corrected'; from: number; to: number; missingKeys: number };

export type Reconciliation = {
  campaignId: string;
  status: string;
  /** What the record holds: units admitted (not released), and what the gate holds. */
  record: { units: number; admitted: number; remaining: number };
  gate: { loaded: boolean; remaining: number | null; inFlight: number };
  repairs: Repair[];
  at: string;
};

/**
 * Compares the gate's counters with the admissions in PostgreSQL and repairs the gate: a unit
 * the gate handed out whose order never reached the record (older than
 * MERCATO_FLASH_LEAK_GRACE_MS: an admission's group commit answers within seconds or fails) is given
 * back (by its key: idempotent); a unit the gate still counts for an admission the record released
 * (its give-back lost) is released (its key kept, holding nothing); if the gate's units left still
 * differ from the record's (less what is in flight), or it lacks a key the record has (a released
 * one included: its retries must find their admission), the gate is reset from the record, keeping
 * the attempts in flight. A gate that holds nothing for the campaign needs no repair: the next
 * attempt rebuilds it from the record. Every repair is reported and logged.
 */
export async function reconcileCampaign(
  deps: Pick<FlashSalesDeps, 'db' | 'gate' | 'ctx'>,
  tenantId: string,
  campaignId: string,
  now = Date.now,
): Promise<Reconciliation> {
  // The watch begins before anything is read: every key an admission, a give-back or a release
  // touches from here to the reset is merged by the reset itself, atomically (see ResetFence).
  // Before, the reset installed the record as read here, and what the gate took meanwhile (an
  // attempt admitted but not yet committed) was wiped: its retry was admitted again, its customer
  // could pass the limit and its units were counted twice, until the next reconciliation.
  const watch = await deps.gate.watch(campaignId);
  let fenced = false;
  try {
    const result = await compareAndRepair(deps, tenantId, campaignId, now, watch);
    fenced = result.fenced;
    return result.reconciliation;
  } finally {
    if (watch !== undefined && !fenced) await deps.gate.unwatch(campaignId, watch).catch(() => {});
  }
}

async function compareAndRepair(
  deps: Pick<FlashSalesDeps, 'db' | 'gate' | 'ctx'>,
  tenantId: string,
  campaignId: string,
  now: () => number,
  watch: string | undefined,
): Promise<{ reconciliation: Reconciliation; fenced: boolean }> {
  let fenced = false;
  const snapshot = await deps.gate.snapshot(campaignId);
  const { campaign, admissions } = await withTenant(deps.db, tenantId, async (anyTrx) => {
    const trx = anyTrx as FlashSalesTrx;
    const campaign = await getCampaign(trx, campaignId);
    const rows = await trx
      .selectFrom('flash_sales.admissions')
      .selectAll()
      .where('campaign_id', '=', campaign.id)
      .execute();
    return { campaign, admissions: rows.map(toAdmission) };
  });
  const held = admissions.filter((a) => a.status !== 'released');
  const released = new Map(
    admissions
      .filter((a) => a.status === 'released')
      .map((a) => [dedupeKey(a.customerId, a.idempotencyKey), a] as const),
  );
  const admittedUnits = held.reduce((sum, a) => sum + a.quantity, 0);
  const recordRemaining = Math.max(0, campaign.units - admittedUnits);
  const result: Reconciliation = {
    campaignId: campaign.id,
    status: statusOf(campaign),
    record: { units: campaign.units, admitted: admittedUnits, remaining: recordRemaining },
    gate: { loaded: snapshot !== undefined, remaining: snapshot?.remaining ?? null, inFlight: 0 },
    repairs: [],
    at: new Date(now()).toISOString(),
  };
  if (!snapshot) return { reconciliation: result, fenced };
  const inRecord = new Set(held.map((a) => dedupeKey(a.customerId, a.idempotencyKey)));
  const inFlight: { key: string; orderId: string; at: number; quantity: number }[] = [];
  for (const [key, entry] of snapshot.keys) {
    // Held in the record; or released at the gate already (it holds nothing).
    if (inRecord.has(key) || entry.quantity === 0) continue;
    const quantity = entry.quantity;
    const customerId = key.slice(0, key.indexOf(':'));
    const idempotencyKey = key.slice(customerId.length + 1);
    // Its release recorded, the give-back after it was lost (or is on its way: by its key, only
    // one of the two gives); no new attempt can hold the key: the gate answers duplicate.
    const wasReleased = released.has(key);
    if (!wasReleased && now() - entry.at < deps.ctx.config.flashLeakGraceMs) {
      inFlight.push({ key, orderId: entry.orderId, at: entry.at, quantity });
      continue;
    }
    const repaired = wasReleased
      ? await deps.gate.release(campaign.id, customerId, quantity, idempotencyKey)
      : await deps.gate.giveBack(campaign.id, customerId, quantity, idempotencyKey);
    if (repaired) {
      result.repairs.push({
        kind: 'leaked-unit',
        customerId,
        key: idempotencyKey,
        orderId: entry.orderId,
        quantity,
        ...(wasReleased ? { released: true } : {}),
      });
    }
  }
  result.gate.inFlight = inFlight.length;
  const after = await deps.gate.snapshot(campaign.id);
  const flying = inFlight.reduce((sum, f) => sum + f.quantity, 0);
  const expected = recordRemaining - flying;
  const missingKeys = [...inRecord, ...released.keys()].filter((k) => !after?.keys.has(k)).length;
  // A watch lost (another reconciliation's began, or the state was installed anew): the next
  // reconciliation repairs what is left.
  if (watch !== undefined && after && (after.remaining !== expected || missingKeys > 0)) {
    const perCustomer = new Map<string, number>();
    for (const a of held) perCustomer.set(a.customerId, (perCustomer.get(a.customerId) ?? 0) + a.quantity);
    type Key = GateState['keys'][number];
    // The record alone; the attempts in flight (and whatever the gate did while this ran) are
    // merged in by the reset, from what the gate holds for them at that instant.
    const state: GateState = {
      remaining: recordRemaining,
      perCustomer: [...perCustomer.entries()],
      keys: [
        ...held.map(
          (a): Key => [
            dedupeKey(a.customerId, a.idempotencyKey),
            a.orderId,
            a.admittedAt.getTime(),
            a.quantity,
          ],
        ),
        ...[...released].map(([key, a]): Key => [key, a.orderId, a.admittedAt.getTime(), 0]),
      ],
    };
    const fence = { watch, carry: inFlight.map((f) => f.key) };
    const installed = await deps.gate.reset(campaign.id, state, gateTtl(campaign, now()), fence);
    fenced = true;
    if (installed) {
      result.repairs.push({ kind: 'remaining-corrected', from: after.remaining, to: expected, missingKeys });
    }
  }
  if (result.repairs.length > 0) {
    deps.ctx.logger.warn(
      { campaignId: campaign.id, repairs: result.repairs },
      'flash-sales: reconciliation repaired the gate',
    );
  }
  return { reconciliation: result, fenced };
}
