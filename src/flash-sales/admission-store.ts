import { type Selectable, sql } from 'kysely';
import { dedupeKey, type GateState } from './gate.ts';
import type { AdmissionStatus, AdmissionsTable, FlashSalesTrx, ReleaseReason } from './tables.ts';

/** An admission: one customer's admitted attempt and its order. */
export type Admission = {
  orderId: string;
  tenantId: string;
  campaignId: string;
  customerId: string;
  idempotencyKey: string;
  requestHash: string;
  quantity: number;
  status: AdmissionStatus;
  payBy: Date;
  releaseReason: ReleaseReason | null;
  admittedAt: Date;
};

export function toAdmission(row: Selectable<AdmissionsTable>): Admission {
  return {
    orderId: row.order_id,
    tenantId: row.tenant_id,
    campaignId: row.campaign_id,
    customerId: row.customer_id,
    idempotencyKey: row.idempotency_key,
    requestHash: row.request_hash,
    quantity: row.quantity,
    status: row.status,
    payBy: new Date(row.pay_by),
    releaseReason: row.release_reason,
    admittedAt: new Date(row.admitted_at),
  };
}

export function admissionView(a: Admission) {
  return {
    orderId: a.orderId,
    campaignId: a.campaignId,
    quantity: a.quantity,
    status: a.status,
    paymentDeadline: a.payBy.toISOString(),
    admittedAt: a.admittedAt.toISOString(),
  };
}

/** What PostgreSQL holds for some customers of a campaign: units per customer (not released) and their attempts by key. */
export async function customersOf(
  trx: FlashSalesTrx,
  campaignId: string,
  customerIds: string[],
): Promise<{ units: Map<string, number>; byKey: Map<string, Admission> }> {
  const rows =
    customerIds.length === 0
      ? []
      : await trx
          .selectFrom('flash_sales.admissions')
          .selectAll()
          .where('campaign_id', '=', campaignId)
          .where('customer_id', 'in', [...new Set(customerIds)])
          .execute();
  const units = new Map<string, number>();
  const byKey = new Map<string, Admission>();
  for (const row of rows) {
    const a = toAdmission(row);
    byKey.set(dedupeKey(a.customerId, a.idempotencyKey), a);
    if (a.status !== 'released') units.set(a.customerId, (units.get(a.customerId) ?? 0) + a.quantity);
  }
  return { units, byKey };
}

/** One admission by its order id (the tenant's); `lock` takes its row lock. */
export async function findAdmission(
  trx: FlashSalesTrx,
  orderId: string,
  lock = false,
): Promise<Admission | undefined> {
  let query = trx.selectFrom('flash_sales.admissions').selectAll().where('order_id', '=', orderId);
  if (lock) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? toAdmission(row) : undefined;
}

/**
 * What the gate should hold for a campaign, from the record: remaining units, per-customer units,
 * keys (a released admission's key holding 0 units: a retry under it is its duplicate).
 */
export async function gateStateOf(trx: FlashSalesTrx, campaignId: string, units: number): Promise<GateState> {
  const rows = await trx
    .selectFrom('flash_sales.admissions')
    .select(['order_id', 'customer_id', 'idempotency_key', 'quantity', 'admitted_at', 'status'])
    .where('campaign_id', '=', campaignId)
    .execute();
  const perCustomer = new Map<string, number>();
  let admitted = 0;
  for (const r of rows) {
    if (r.status === 'released') continue;
    admitted += r.quantity;
    perCustomer.set(r.customer_id, (perCustomer.get(r.customer_id) ?? 0) + r.quantity);
  }
  return {
    remaining: Math.max(0, units - admitted),
    perCustomer: [...perCustomer.entries()],
    keys: rows.map(
      (r) =>
        [
          dedupeKey(r.customer_id, r.idempotency_key),
          r.order_id,
          new Date(r.admitted_at).getTime(),
          r.status === 'released' ? 0 : r.quantity,
        ] as [string, string, number, number],
    ),
  };
}

/** Moves admissions to released, keeping the campaign's counters true; returns those it moved. */
export async function releaseAdmissions(
  trx: FlashSalesTrx,
  campaignId: string,
  orderIds: string[],
  reason: ReleaseReason,
): Promise<Admission[]> {
  if (orderIds.length === 0) return [];
  const now = new Date();
  const rows = await trx
    .updateTable('flash_sales.admissions')
    .set({ status: 'released', release_reason: reason, payment: null, updated_at: now })
    .where('order_id', 'in', orderIds)
    .where('campaign_id', '=', campaignId)
    .where('status', 'in', ['admitted', 'paying'])
    .returningAll()
    .execute();
  const units = rows.reduce((sum, r) => sum + r.quantity, 0);
  if (units > 0) {
    await trx
      .updateTable('flash_sales.campaigns')
      .set((eb) => ({
        admitted: eb('admitted', '-', units),
        released: eb('released', '+', units),
        // Units are back: the next sell-out is announced again.
        announced: sql<string>`announced - 'soldOut'`,
        updated_at: now,
      }))
      .where('id', '=', campaignId)
      .execute();
  }
  return rows.map(toAdmission);
}
