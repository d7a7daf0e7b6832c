import { uuidv7 } from '../platform/uuidv7.ts';
import type { ExceptionsTrx } from './tables.ts';

/** One audit entry of an exception: what changed, who did it, an operator's note. */
export type AuditEntry = {
  tenantId: string;
  exceptionId: string;
  /** captured, repeated, acknowledged, resolved, closed, retry.requested, retry.succeeded, retry.failed, ... */
  action: string;
  /** `user:<id>`, `key:<id>`, or `system:<part>`. */
  actor: string;
  note?: string | null | undefined;
  details?: Record<string, unknown> | undefined;
};

/** Appends audit entries in the caller's transaction, so they commit with the change. */
export async function recordAudit(trx: ExceptionsTrx, entries: AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await trx
    .insertInto('exceptions.audit')
    .values(
      entries.map((e) => ({
        id: uuidv7(),
        tenant_id: e.tenantId,
        exception_id: e.exceptionId,
        action: e.action,
        actor: e.actor,
        note: e.note ?? null,
        details: e.details === undefined ? null : JSON.stringify(e.details),
      })),
    )
    .execute();
}
