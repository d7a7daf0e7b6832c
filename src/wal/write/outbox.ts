import type { Transaction } from 'kysely';
import { AppError } from '../../platform/http/index.ts';
import {
  idempotencyConflict,
  insertMessageRows,
  type NewMessageRow,
} from '../backends/postgres/group-commit.ts';
import type { Namespace, Target } from '../namespaces/index.ts';
import type { WalTables } from '../tables.ts';
import {
  type MessageInput,
  receiptOf,
  requireEnabled,
  toRows,
  validateMessages,
  type WriteReceipt,
} from './prepare.ts';

/** A receipt plus whether the messageId had already been written with the same body. */
export type OutboxReceipt = WriteReceipt & { replayed: boolean };

/**
 * The transactional outbox: writes messages to the namespace in the CALLER's transaction (no group
 * commit), so a module's domain change and the messages announcing it commit together or not at
 * all. With the PostgreSQL backend the row is the WAL message itself: no second hop. With a
 * stream backend the row waits in wal.messages until the relay (backends/stream/relay.ts) has
 * appended it to that backend, in order, and then deletes it.
 *
 * `trx` must be a transaction of `tenantId` (withTenant), and the caller a Mercato module (no
 * permission check here). Validates like POST /wal/write (409 NAMESPACE_DISABLED, 413, 422
 * PAYLOAD_SCHEMA_MISMATCH, 422 DELAY_TOO_LONG) before writing anything;
 * a messageId already written with another body throws 409 IDEMPOTENCY_KEY_REUSED, after which the
 * caller must let its transaction roll back (throwing out of the withTenant callback does).
 */
export async function writeMessages(
  trx: Transaction<WalTables>,
  tenantId: string,
  namespace: Namespace,
  messages: MessageInput[],
): Promise<OutboxReceipt[]> {
  return insertOutboxRows(trx, outboxRows(tenantId, namespace, messages));
}

/** writeMessages' checks: the rows to insert, or the error it would throw before writing. */
export function outboxRows(
  tenantId: string,
  namespace: Namespace,
  messages: MessageInput[],
  /** Every messageId was just made (the event bus's UUIDv7s): their hashes skip canonical JSON. */
  freshIds = false,
  /** See toRows: a target passing over a message its types take. */
  declines?: (index: number, target: Target) => boolean,
): NewMessageRow[] {
  if (namespace.tenantId !== tenantId) {
    throw new AppError('NOT_FOUND', `namespace ${namespace.name} not found`);
  }
  if (messages.length === 0) return [];
  requireEnabled(namespace);
  validateMessages(namespace, messages, (i) => `/messages/${i}`);
  return toRows(tenantId, namespace, namespace.backend, messages, new Date(), freshIds, declines);
}

/** writeMessages' write: rows from outboxRows, of one or several namespaces, in one insert. */
export async function insertOutboxRows(
  trx: Transaction<WalTables>,
  rows: NewMessageRow[],
): Promise<OutboxReceipt[]> {
  if (rows.length === 0) return [];
  const { outcomes, mismatch } = await insertMessageRows(trx, rows);
  const conflicts = rows.filter((_, i) => mismatch[i]).map((r) => r.message_id);
  if (conflicts.length > 0) throw idempotencyConflict(conflicts);
  return outcomes.map((o) => ({ ...receiptOf(o.message), replayed: o.replayed }));
}
