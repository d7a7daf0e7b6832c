import { sql } from 'kysely';
import { login } from '../identity/auth/auth-test-fixtures.ts';
import { addUser, auth } from '../identity/users/user-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { type ExceptionsTestApp, type OpsTenant, send } from './exceptions-test-fixtures.ts';
import {
  CATEGORIES,
  type Category,
  type ExceptionStatus,
  type ExceptionsDb,
  type ExceptionsTrx,
  INTERFACE_TYPES,
  type InterfaceType,
  SEVERITIES,
  type Severity,
  type SourceRef,
  STATUSES,
} from './tables.ts';

/** An exception to insert: the transaction id, and whatever else the test cares about. */
export type SeedInput = {
  transactionId: string;
  externalId?: string | null;
  interfaceType?: InterfaceType;
  eventType?: string;
  operation?: string;
  reason?: string;
  category?: Category;
  severity?: Severity;
  status?: ExceptionStatus;
  customerId?: string | null;
  locationCode?: string | null;
  orderId?: string | null;
  retryable?: boolean;
  retryCount?: number;
  retryLimit?: number;
  payload?: unknown;
  sourceRef?: SourceRef;
  occurrences?: number;
  firstSeen?: Date;
  lastSeen?: Date;
  resolvedAt?: Date | null;
};

/** A seeded exception as the test wrote it, with the ids the tables gave it. */
export type Seeded = Required<Omit<SeedInput, 'payload' | 'sourceRef'>> & {
  id: string;
  groupId: string;
  payload: unknown;
};

const db = (t: ExceptionsTestApp) => t.ctx.db.kysely as unknown as ExceptionsDb;

/**
 * Inserts exceptions straight into the tables, as capture would have left them: the group of
 * each fingerprint first (one per interface type, category and reason), then the exceptions, in
 * batches. For tests of the reads and the lifecycle, without the capture pipeline.
 */
export async function seedExceptions(
  t: ExceptionsTestApp,
  tenantId: string,
  inputs: SeedInput[],
): Promise<Seeded[]> {
  const now = Date.now();
  const rows = inputs.map((input, i) => {
    const lastSeen = input.lastSeen ?? new Date(now - i * 1000);
    return {
      id: uuidv7(),
      transactionId: input.transactionId,
      externalId: input.externalId ?? null,
      interfaceType: input.interfaceType ?? 'ORDER',
      eventType: input.eventType ?? 'OrderRejected',
      operation: input.operation ?? 'createOrder',
      reason: input.reason ?? 'seeded failure',
      category: input.category ?? 'UNKNOWN',
      severity: input.severity ?? 'MEDIUM',
      status: input.status ?? 'NEW',
      customerId: input.customerId ?? null,
      locationCode: input.locationCode ?? null,
      orderId: input.orderId ?? null,
      retryable: input.retryable ?? false,
      retryCount: input.retryCount ?? 0,
      retryLimit: input.retryLimit ?? 5,
      payload: input.payload ?? null,
      sourceRef: input.sourceRef ?? {
        kind: 'source' as const,
        interfaceType: input.interfaceType ?? 'ORDER',
        externalId: input.externalId ?? null,
      },
      occurrences: input.occurrences ?? 1,
      firstSeen: input.firstSeen ?? lastSeen,
      lastSeen,
      resolvedAt: input.resolvedAt ?? null,
      groupId: '',
    };
  });
  await withTenant(db(t), tenantId, async (trx) => {
    const fingerprints = new Map<string, (typeof rows)[number]>();
    for (const r of rows) fingerprints.set(`${r.interfaceType}:${r.category}:${r.reason}`.slice(0, 100), r);
    for (const [fingerprint, r] of fingerprints) {
      await trx
        .insertInto('exceptions.groups')
        .values({
          id: uuidv7(),
          tenant_id: tenantId,
          fingerprint,
          interface_type: r.interfaceType,
          category: r.category,
          normalized_reason: r.reason.toLowerCase().slice(0, 1000),
          severity: r.severity,
          exceptions: 0,
          occurrences: 0,
          first_seen: r.firstSeen,
          last_seen: r.lastSeen,
        })
        .onConflict((oc) => oc.columns(['tenant_id', 'fingerprint']).doNothing())
        .execute();
    }
    const groups = await trx
      .selectFrom('exceptions.groups')
      .select(['id', 'fingerprint'])
      .where('tenant_id', '=', tenantId)
      .where('fingerprint', 'in', [...fingerprints.keys()])
      .execute();
    const groupOf = new Map(groups.map((g) => [g.fingerprint, g.id]));
    for (const r of rows)
      r.groupId = groupOf.get(`${r.interfaceType}:${r.category}:${r.reason}`.slice(0, 100))!;
    for (let i = 0; i < rows.length; i += 500) {
      await trx
        .insertInto('exceptions.exceptions')
        .values(
          rows.slice(i, i + 500).map((r) => ({
            id: r.id,
            tenant_id: tenantId,
            transaction_id: r.transactionId,
            external_id: r.externalId,
            interface_type: r.interfaceType,
            event_type: r.eventType,
            operation: r.operation,
            reason: r.reason,
            category: r.category,
            severity: r.severity,
            status: r.status,
            customer_id: r.customerId,
            location_code: r.locationCode,
            order_id: r.orderId,
            amount: null,
            currency: null,
            retryable: r.retryable,
            retry_count: r.retryCount,
            retry_limit: r.retryLimit,
            correlation_id: null,
            causation_id: null,
            source_ref: JSON.stringify(r.sourceRef),
            payload: r.payload === null ? null : JSON.stringify(r.payload),
            group_id: r.groupId,
            occurrences: r.occurrences,
            first_seen: r.firstSeen,
            last_seen: r.lastSeen,
            acknowledged_by: null,
            acknowledged_at: null,
            acknowledge_note: null,
            resolved_by: r.resolvedAt ? 'user:seed' : null,
            resolved_at: r.resolvedAt,
            resolution: r.resolvedAt ? 'fixed' : null,
            resolve_note: null,
          })),
        )
        .execute();
    }
    // The groups' counts, as capture keeps them.
    await sql`
      update exceptions.groups g set exceptions = c.n, occurrences = c.o, first_seen = c.f, last_seen = c.l
      from (select group_id, count(*)::int n, sum(occurrences)::bigint o, min(first_seen) f, max(last_seen) l
        from exceptions.exceptions where tenant_id = ${tenantId} group by group_id) c
      where g.id = c.group_id`.execute(trx);
  });
  return rows.map(({ sourceRef: _ref, ...r }) => r);
}

/** Runs fn in a transaction of the tenant on the collector's tables (a test's own reads and writes). */
export const asTenant = <T>(t: ExceptionsTestApp, tenantId: string, fn: (trx: ExceptionsTrx) => Promise<T>) =>
  withTenant(db(t), tenantId, fn);

/** X-API-Key of a new key of the tenant granted `permissions` (exceptions:read, ...). */
export async function apiKeyOf(
  t: ExceptionsTestApp,
  tenant: OpsTenant,
  permissions: string[],
): Promise<Record<string, string>> {
  const key = await send(t.app, 'POST', '/api/v1/api-keys', tenant.admin, {
    name: 'exceptions',
    permissions,
  });
  if (key.statusCode !== 201) throw new Error(`api key: ${key.statusCode} ${key.body}`);
  return { 'x-api-key': key.json<{ key: string }>().key };
}

/** The Authorization header of a new customer of the tenant (who may not use the collector). */
export async function customerOf(t: ExceptionsTestApp, tenant: OpsTenant): Promise<Record<string, string>> {
  const email = `customer@${tenant.slug}.test`;
  await addUser(t, tenant.id, email, 'customer');
  return auth((await login(t.app, tenant.slug, email)).accessToken);
}

/** The URL of an exception's route: its transaction id URL-encoded (any characters), then `rest`. */
export const exceptionUrl = (transactionId: string, rest = '') =>
  `/api/v1/exceptions/${encodeURIComponent(transactionId)}${rest}`;

/**
 * 24 exceptions TX-1000… spread over every status, severity, category and interface type, each
 * last seen a minute before the one before it from `base` (7 and 8 tie), first seen 0 to 23 hours
 * earlier, resolved 5 s after last seen when RESOLVED or CLOSED; customer cust-a every 5th,
 * location LOC-1 every 3rd, retryable every 2nd, 1 to 7 occurrences.
 */
export function spreadExceptions(base: number): SeedInput[] {
  return Array.from({ length: 24 }, (_, i) => {
    const lastSeen = new Date(base - (i === 8 ? 7 : i) * 60_000);
    const status = STATUSES[i % 7]!;
    const closed = status === 'RESOLVED' || status === 'CLOSED';
    return {
      transactionId: `TX-${1000 + i}`,
      status,
      severity: SEVERITIES[i % 4]!,
      category: CATEGORIES[(i * 3) % 7]!,
      interfaceType: INTERFACE_TYPES[Math.floor(i / 6) % 4]!,
      customerId: i % 5 === 0 ? 'cust-a' : `cust-${i}`,
      locationCode: i % 3 === 0 ? 'LOC-1' : null,
      retryable: i % 2 === 0,
      occurrences: ((i * 5) % 7) + 1,
      lastSeen,
      firstSeen: new Date(lastSeen.getTime() - ((i * 7) % 24) * 3_600_000),
      resolvedAt: closed ? new Date(lastSeen.getTime() + 5_000) : null,
    };
  });
}
