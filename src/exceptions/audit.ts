import { sql } from 'kysely';
import { type JsonColumn, jsonRows } from '../platform/db/index.ts';
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

const AUDIT_COLUMNS: JsonColumn[] = [
  ['id', 'uuid'],
  ['tenant_id', 'uuid'],
  ['exception_id', 'uuid'],
  ['action', 'text'],
  ['actor', 'text'],
  ['note', 'text'],
  ['details', 'jsonb'],
];

/**
 * When an entry happened: the time of the statement writing it, not the transaction's start (the
 * column's default). A change locks its exception before it writes its entry, so entries stamped
 * so read in the order the changes took effect: a retry's outcome whose transaction began before a
 * resolve but waited for it (and left it resolved) comes after the resolve, not before.
 */
export const AUDIT_AT = sql`statement_timestamp()`;

/**
 * Appends audit entries in the caller's transaction, so they commit with the change: one JSON
 * parameter however many (a capture's batch writes hundreds; one bind each would be thousands).
 */
export async function recordAudit(trx: ExceptionsTrx, entries: AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const rows = entries.map((e) => [
    uuidv7(),
    e.tenantId,
    e.exceptionId,
    e.action,
    e.actor,
    e.note ?? null,
    e.details ?? null,
  ]);
  await sql`
    insert into exceptions.audit (id, tenant_id, exception_id, action, actor, note, details, at)
    select id, tenant_id, exception_id, action, actor, note, details, ${AUDIT_AT}
    from ${jsonRows(AUDIT_COLUMNS, rows)} as x`.execute(trx);
}
