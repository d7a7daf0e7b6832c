import { type Kysely, sql, type Transaction } from 'kysely';
import { withSystem } from '../../../platform/db/index.ts';
import type { WalTables } from '../../tables.ts';
import type { StreamBackendName } from './contract.ts';

// What the outbox relay sent to a stream backend without that backend's answer (migration 0063).
//
// An append that got no answer may have been stored (a NATS publish whose ack was lost, a Redis
// that ran the script and fell silent). Its rows wait for the same backend; a later pass that finds
// that backend down (a refusal: BackendUnavailableError) must not hand them to the fallback, nor to
// the namespace's new backend when it moved: both backends would deliver them. So the row carries
// `sent_to`, in PostgreSQL: a later pass of any process, or of this one restarted, knows it. It is
// let go only with the row's confirmation (relayed: deleted) or the backend's word that it does not
// hold it (refused as retired, a messageId held with another body: dead letter); a refusal to
// connect says nothing of an earlier append, so it lets nothing go. Appending the row again to the
// same backend is always safe: its messageId makes a stored one a replay.
//
// The marks are committed before anything is sent (markSending, a transaction of its own), so that
// a process killed while it waits for the answer leaves them too; and set again in the pass whose
// append got no answer (markUnconfirmed), for rows that pass read without marks (written since).
// The price: rows marked for a backend that then refuses them before sending (it went down between
// the relay's ping and its append) wait for it rather than for the fallback.

/** The relay's lock (one relay at a time across processes), taken for its transaction. */
export const RELAY_LOCK = sql`select pg_try_advisory_xact_lock(hashtext('mercato_wal_relay')) as locked`;

/**
 * Marks the rows of the next pass (its first `batchSize` rows) that are about to be sent to one of
 * `backends` (those that answered its ping): their namespace names that backend (a moved one's are
 * handed on unsent). In a transaction of its own, committed before the pass opens its own.
 */
export async function markSending(
  db: Kysely<WalTables>,
  backends: readonly StreamBackendName[],
  batchSize: number,
): Promise<void> {
  if (backends.length === 0) return;
  await withSystem(db, async (trx) => {
    const { rows: lock } = await RELAY_LOCK.execute(trx);
    if (!(lock[0] as { locked: boolean }).locked) return;
    await sql`
      update wal.messages m set sent_to = m.backend
      from (
        select id from wal.messages
        where backend <> 'postgres' and state in ('pending', 'scheduled')
        order by id
        limit ${batchSize}
      ) next
      where m.id = next.id and m.sent_to is null and m.backend = any(${[...backends]}::text[])
        and exists (
          select 1 from wal.namespaces n
          where n.tenant_id = m.tenant_id and n.name = m.namespace
            and (n.backend = m.backend or n.fallback_backend = m.backend))`.execute(trx);
  });
}

/** Marks rows sent to `backend` that gave no answer (in the pass's transaction, which commits). */
export async function markUnconfirmed(
  trx: Transaction<WalTables>,
  ids: readonly string[],
  backend: StreamBackendName,
): Promise<void> {
  await sql`
    update wal.messages set sent_to = ${backend}
    where id = any(${[...ids]}::uuid[]) and sent_to is null`.execute(trx);
}
