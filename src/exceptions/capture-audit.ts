import type { AuditEntry } from './audit.ts';
import type { Pending } from './capture-prepare.ts';
import { type Captured, CLOSED_STATUSES } from './capture-store.ts';

/** Who captures, in the audit. */
export const CAPTURE_ACTOR = 'system:capture';

/** The audit action of one report: the first of a new exception is captured, of a closed one reopened. */
export function auditEntries(tenantId: string, rows: Captured[], byTx: Map<string, Pending>): AuditEntry[] {
  return rows.flatMap((row) => {
    const pending = byTx.get(row.transaction_id);
    const reopened = !row.inserted && row.old_status !== null && CLOSED_STATUSES.includes(row.old_status);
    const first = row.inserted ? 'captured' : reopened ? 'reopened' : 'repeated';
    const rule = pending?.classification.rule;
    return (pending?.reports ?? []).map((input, i) => ({
      tenantId,
      exceptionId: row.id,
      action: i === 0 ? first : 'repeated',
      actor: CAPTURE_ACTOR,
      details: {
        eventType: input.eventType,
        category: row.category,
        severity: row.severity,
        ...(rule ? { rule } : {}),
        ...(reopened && i === 0 ? { from: row.old_status } : {}),
      },
    }));
  });
}
