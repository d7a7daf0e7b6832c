import { withTenant } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { ExceptionRow } from './exception-view.ts';
import type { OpsTenant } from './exceptions-test-fixtures.ts';
import type { Category, ExceptionStatus, ExceptionsDb, InterfaceType, Severity } from './tables.ts';

export type NewException = {
  severity?: Severity;
  status?: ExceptionStatus;
  reason?: string;
  type?: InterfaceType;
  category?: Category;
  customer?: string | null;
  order?: string | null;
  amount?: number | null;
  currency?: string | null;
  occurrences?: number;
  minutesAgo?: number;
};

/** Groups and exceptions written straight into the tables, for the alert rules to see. */
export function alertRows(database: () => ExceptionsDb) {
  async function newGroup(
    tenant: OpsTenant,
    g: { type?: InterfaceType; category?: Category; reason?: string } = {},
  ): Promise<string> {
    const id = uuidv7();
    await withTenant(database(), tenant.id, (trx) =>
      trx
        .insertInto('exceptions.groups')
        .values({
          id,
          tenant_id: tenant.id,
          fingerprint: id,
          exceptions: 1,
          interface_type: g.type ?? 'ORDER',
          category: g.category ?? 'BUSINESS_RULE',
          normalized_reason: g.reason ?? 'payment declined',
          severity: 'CRITICAL',
          first_seen: new Date(),
          last_seen: new Date(),
        })
        .execute(),
    );
    return id;
  }

  async function newException(
    tenant: OpsTenant,
    groupId: string,
    e: NewException = {},
  ): Promise<ExceptionRow> {
    const seen = new Date(Date.now() - (e.minutesAgo ?? 0) * 60_000);
    return withTenant(database(), tenant.id, (trx) =>
      trx
        .insertInto('exceptions.exceptions')
        .values({
          id: uuidv7(),
          tenant_id: tenant.id,
          transaction_id: `tx-${uuidv7()}`,
          interface_type: e.type ?? 'ORDER',
          event_type: 'OrderRejected',
          operation: 'create-order',
          reason: e.reason ?? 'payment declined by the issuer',
          category: e.category ?? 'BUSINESS_RULE',
          severity: e.severity ?? 'CRITICAL',
          status: e.status ?? 'NEW',
          customer_id: e.customer ?? null,
          order_id: e.order ?? null,
          amount: e.amount ?? null,
          currency: e.currency ?? null,
          retryable: true,
          occurrences: e.occurrences ?? 1,
          correlation_id: 'corr-alerts',
          source_ref: JSON.stringify({ kind: 'source', interfaceType: e.type ?? 'ORDER', externalId: null }),
          group_id: groupId,
          first_seen: seen,
          last_seen: seen,
        })
        .returningAll()
        .executeTakeFirstOrThrow(),
    );
  }
  return { newGroup, newException };
}
