import { isoTime, withTenant } from '../../platform/db/index.ts';
import type { WalDeps } from '../deps.ts';
import { backendsHolding } from '../namespaces/namespace.ts';
import type { MessageState } from '../tables.ts';

/** Where one message stands, wherever it is: enough to tell whether a requeue was delivered. */
export type WalMessageState = {
  state: MessageState;
  backend: string;
  payload: unknown;
  lastError: string | null;
  deliveredAt: string | null;
  deadAt: string | null;
};

const asJson = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);
const time = (v: Date | string | number | null): string | null =>
  v === null ? null : typeof v === 'number' ? new Date(v).toISOString() : isoTime(v);

/**
 * One message of the tenant's namespace: its row in wal.messages (the postgres backend, rows
 * waiting for the relay, every dead letter), else what the namespace's stream backends hold;
 * undefined when neither has it (purged past retention, discarded). Runs its own transactions:
 * call it outside any (on PGlite a second transaction would wait for the caller's forever).
 * A stream backend that cannot be reached throws.
 */
export async function readMessageState(
  deps: Pick<WalDeps, 'db' | 'namespaces' | 'streams'>,
  tenantId: string,
  namespace: string,
  messageId: string,
): Promise<WalMessageState | undefined> {
  const row = await withTenant(deps.db, tenantId, (trx) =>
    trx
      .selectFrom('wal.messages')
      .select(['state', 'backend', 'payload', 'last_error', 'delivered_at', 'dead_at'])
      .where('tenant_id', '=', tenantId)
      .where('namespace', '=', namespace)
      .where('message_id', '=', messageId)
      .executeTakeFirst(),
  );
  if (row) {
    return {
      state: row.state,
      backend: row.backend,
      payload: asJson(row.payload),
      lastError: row.last_error,
      deliveredAt: time(row.delivered_at),
      deadAt: time(row.dead_at),
    };
  }
  const found = await deps.namespaces.get(tenantId, namespace);
  if (!found) return undefined;
  for (const backend of backendsHolding(found)) {
    const stream = backend === 'postgres' ? undefined : deps.streams.get(backend);
    const view = await stream?.find(tenantId, namespace, messageId);
    if (view) {
      return {
        state: view.state,
        backend: view.backend,
        payload: JSON.parse(view.message.payload) as unknown,
        lastError: view.lastError,
        deliveredAt: time(view.deliveredAt),
        deadAt: time(view.deadAt),
      };
    }
  }
  return undefined;
}
