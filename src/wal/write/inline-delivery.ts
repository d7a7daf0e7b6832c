import { type Kysely, sql } from 'kysely';
import { withTenant } from '../../platform/db/index.ts';
import {
  idempotencyConflict,
  insertMessageRows,
  type NewMessageRow,
  type WriteOutcome,
} from '../backends/postgres/group-commit.ts';
import type { InlineRun } from '../delivery/index.ts';
import type { InternalTarget, Namespace } from '../namespaces/namespace.ts';
import type { WalTables } from '../tables.ts';
import { messageType, takesMessage } from '../targets/cloud-event.ts';
import type { Delivery } from '../targets/target-result.ts';
import { messageOfRow } from './prepare.ts';

/** The delivery engine's inline handlers, and what is told of each inline delivery (metrics). */
export type InlineDelivery = {
  runs(handler: string): boolean;
  run: InlineRun;
  onDelivered?(namespace: Namespace, target: InternalTarget, deliveries: Delivery[]): void;
};

/**
 * The targets of a namespace a write delivers to inline: enabled system (module-declared)
 * internal targets whose handler runs inline. A tenant's own targets never do.
 */
export function inlineTargets(inline: InlineDelivery | undefined, namespace: Namespace): InternalTarget[] {
  if (!inline || !namespace.system || !namespace.enabled) return [];
  return namespace.targets.filter(
    (t): t is InternalTarget =>
      t.type === 'internal' && t.enabled && t.system === true && inline.runs(t.handler),
  );
}

/** A row's headers and payload: the message's own when toRows made the row, else parsed. */
function contentOf(row: NewMessageRow): { headers: Record<string, string>; payload: unknown } {
  const message = messageOfRow(row);
  if (message) return { headers: message.headers ?? {}, payload: message.payload ?? null };
  return { headers: JSON.parse(row.headers) as Record<string, string>, payload: JSON.parse(row.payload) };
}

const toDelivery = (row: NewMessageRow, content: ReturnType<typeof contentOf>): Delivery => ({
  deliveryId: row.id,
  messageId: row.message_id,
  tenantId: row.tenant_id,
  namespace: row.namespace,
  key: row.ordering_key,
  payload: content.payload,
  headers: content.headers,
  attempt: 1,
  createdAt: row.created_at,
  dueAt: row.due_at,
});

/**
 * Plans each row: the inline targets it goes to (due now, no ordering key, its type matched) are
 * marked done, and a row left with no other target to reach is stored delivered. A row with an
 * ordering key waits for the engine: an earlier message of its key may still be undelivered.
 */
function plan(namespace: Namespace, targets: InternalTarget[], rows: NewMessageRow[]) {
  const others = namespace.targets.filter((t) => t.enabled && !targets.includes(t as InternalTarget));
  const byTarget = new Map<InternalTarget, { row: NewMessageRow; delivery: Delivery }[]>(
    targets.map((t) => [t, []]),
  );
  const planned = rows.map((row) => {
    if (row.state !== 'pending' || row.ordering_key !== null) return row;
    const content = contentOf(row);
    const message = { headers: content.headers, namespace: row.namespace };
    const type = messageType(message);
    const mine = targets.filter((t) => takesMessage(t, message, type));
    if (mine.length === 0) return row;
    const rest = others.some((t) => takesMessage(t, message, type));
    const next: NewMessageRow = {
      ...row,
      state: rest ? 'pending' : 'delivered',
      targets_done: mine.map((t) => t.name),
      attempts: 1,
    };
    const delivery = toDelivery(next, content);
    for (const t of mine) byTarget.get(t)!.push({ row: next, delivery });
    return next;
  });
  return { planned, byTarget };
}

/**
 * Inline delivery: a write of a tenant to a postgres-backend namespace with inline targets (the
 * exception collector's capture of `interface-exceptions`) runs in ONE transaction of the tenant
 * that inserts its messages, runs each inline target's handler on the new ones (under a
 * savepoint; no inbox rows: a target done is never delivered again) and stores them with that
 * target done, delivered when no other
 * target waits: the message and its effect commit together, and the engine never has to lease,
 * deliver and record them. When a handler fails, its part rolls back to the savepoint and its
 * messages are stored as if written plainly (the engine delivers and retries them as usual).
 * Replays (a messageId stored with the same body) deliver nothing again; a messageId stored with
 * another body rolls the whole write back (409), as the group committer does.
 */
export async function writeInline(
  db: Kysely<WalTables>,
  inline: InlineDelivery,
  namespace: Namespace,
  targets: InternalTarget[],
  rows: NewMessageRow[],
): Promise<WriteOutcome[]> {
  const { planned, byTarget } = plan(namespace, targets, rows);
  return withTenant(db, namespace.tenantId, async (trx) => {
    const { outcomes, mismatch } = await insertMessageRows(trx, planned);
    if (mismatch.some(Boolean))
      throw idempotencyConflict(planned.filter((_, i) => mismatch[i]).map((r) => r.message_id));
    const fresh = new Set(planned.filter((_, i) => !outcomes[i]!.replayed));
    const failed: { target: InternalTarget; ids: string[] }[] = [];
    for (const [target, mine] of byTarget) {
      const news = mine.filter(({ row }) => fresh.has(row));
      if (news.length === 0) continue;
      const deliveries = news.map((n) => n.delivery);
      if (await inline.run(trx, target.handler, deliveries))
        inline.onDelivered?.(namespace, target, deliveries);
      else failed.push({ target, ids: news.map((n) => n.row.id) });
    }
    for (const { target, ids } of failed) {
      // Due for the engine with this target not reached; no attempt made, unless another inline
      // target of the message was reached.
      await sql`
        update wal.messages set state = 'pending', delivered_at = null,
          targets_done = array_remove(targets_done, ${target.name}),
          attempts = case when cardinality(array_remove(targets_done, ${target.name})) = 0 then 0 else attempts end
        where id = any(${ids}::uuid[])`.execute(trx);
    }
    if (failed.length > 0) await sql`select pg_notify('mercato_wal_ready', '')`.execute(trx);
    return outcomes;
  });
}
