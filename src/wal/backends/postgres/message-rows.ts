import type { BackendName, MessageState } from '../../tables.ts';

// The rows a write inserts into wal.messages, what they came to, and the JSON that carries them
// to the insert functions (insert-rows.ts).

/** One message ready to insert into wal.messages (already validated and authorized by the caller). */
export type NewMessageRow = {
  id: string;
  tenant_id: string;
  namespace: string;
  message_id: string;
  ordering_key: string | null;
  /** JSON text. */
  payload: string;
  /** JSON text. */
  headers: string;
  request_hash: string;
  backend: BackendName;
  state: MessageState;
  due_at: Date;
  max_attempts: number;
  created_at: Date;
  /** Targets it reached already, in the write's transaction (inline delivery); default none. */
  targets_done?: string[];
  /** Attempts made already (1 after an inline delivery); default 0. */
  attempts?: number;
};

/** The stored message a write came to: the new row, or the one an earlier write with the same messageId left. */
export type StoredMessage = {
  id: string;
  tenantId: string;
  namespace: string;
  messageId: string;
  requestHash: string;
  backend: BackendName;
  state: MessageState;
  dueAt: Date;
  createdAt: Date;
};

/** What one row of a write came to. `replayed`: the messageId existed with the same body; nothing new was written. */
export type WriteOutcome = { message: StoredMessage; replayed: boolean };

export type ReturnedRow = {
  id: string;
  tenant_id: string;
  namespace: string;
  message_id: string;
  request_hash: string;
  backend: BackendName;
  state: MessageState;
  due_at: Date | string;
  created_at: Date | string;
};

export const keyOf = (r: { tenant_id: string; namespace: string; message_id: string }) =>
  `${r.tenant_id}\u0000${r.namespace}\u0000${r.message_id}`;

/** The stored message a row (sent or read back) describes; `state` when the store decided another. */
export function toStored(row: ReturnedRow, state: MessageState = row.state): StoredMessage {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    namespace: row.namespace,
    messageId: row.message_id,
    requestHash: row.request_hash,
    backend: row.backend,
    state,
    dueAt: new Date(row.due_at),
    createdAt: new Date(row.created_at),
  };
}

/**
 * The rows as one JSON array of arrays, as wal.message_rows reads them (migration 0038): each
 * [s (its submission), id, tenant_id, namespace, message_id, ordering_key, payload, headers,
 * request_hash, backend, state, due_at, max_attempts, created_at, targets_done, attempts]. Payload
 * and headers are JSON text already; ids, hashes, namespace names (^[a-z0-9][a-z0-9._-]*$) and the
 * enums need no escaping, so only messageId and key go through JSON.stringify.
 */
export function rowsJson(rows: NewMessageRow[], submissions: readonly number[] | undefined): string {
  let json = '[';
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const key = r.ordering_key === null ? 'null' : JSON.stringify(r.ordering_key);
    json +=
      `${i > 0 ? ',' : ''}[${submissions?.[i] ?? 0},"${r.id}","${r.tenant_id}","${r.namespace}",` +
      `${JSON.stringify(r.message_id)},${key},${r.payload},${r.headers},"${r.request_hash}",` +
      `"${r.backend}","${r.state}","${r.due_at.toISOString()}",${r.max_attempts},` +
      `"${r.created_at.toISOString()}"` +
      (r.targets_done ? `,${JSON.stringify(r.targets_done)},${r.attempts ?? 0}` : '') +
      ']';
  }
  return `${json}]`;
}
