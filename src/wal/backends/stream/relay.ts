import { type Kysely, sql, type Transaction } from 'kysely';
import { withSystem } from '../../../platform/db/index.ts';
import { AppError } from '../../../platform/http/index.ts';
import type { AppContext } from '../../../platform/index.ts';
import type { BackendName, WalTables } from '../../tables.ts';
import { BackendTimeoutError, bounded } from './bounded.ts';
import {
  BackendUnavailableError,
  NamespaceRetiredError,
  type StreamBackend,
  type StreamBackendName,
} from './contract.ts';
import { reopenIfNamed } from './prune.ts';
import { markSending, markUnconfirmed, RELAY_LOCK } from './relay-marks.ts';
import { handOn, namedBy, readWaiting, type WaitingRow } from './relay-rows.ts';

export type RelayDeps = {
  ctx: AppContext;
  db: Kysely<WalTables>;
  streams: ReadonlyMap<StreamBackendName, StreamBackend>;
  /** Rows moved per transaction. (Default: 500) */
  batchSize?: number;
  /** After a backend refused, look again this much later. (Default: 1000) */
  retryMs?: number;
  /** How long a backend's answer is waited for. (Default: RELAY_BACKEND_TIMEOUT_MS) */
  backendTimeoutMs?: number;
};

/** How long the relay waits for a backend's answer, by default (see startRelay). */
export const RELAY_BACKEND_TIMEOUT_MS = 2_000;

export type Relay = {
  wake(): void;
  stop(): Promise<void>;
  /** Moves what is waiting now; resolves with how many rows left PostgreSQL (for tests). */
  drain(): Promise<number>;
};

/**
 * The relay of the transactional outbox for stream backends: rows a module wrote in its own
 * transaction (and dead letters requeued from the dead-letter routes) wait in wal.messages with
 * the namespace's stream backend; the relay appends them to that backend in id order, then
 * deletes them, in one PostgreSQL transaction that holds an advisory lock. A crash between the
 * append and the commit appends again on the next run, which the backend's messageId
 * idempotency turns into a no-op: nothing is lost and nothing is sent twice. When the backend is
 * down and the namespace falls back to postgres, the rows are handed to the postgres backend
 * instead; otherwise they wait. A messageId the backend already holds with another body becomes
 * a dead letter with that error.
 *
 * Rows of a namespace that no longer names their backend (as its backend or fallback: it moved,
 * and the old backend is draining, or was pruned) go to the namespace's backend instead: a
 * draining backend takes no new writes (migration 0056), and a pruned one would never deliver
 * them. One that refuses the namespace as retired (prune.ts: it moved off while this pass was
 * under way, or it moved back) is handled the same way, after reopening the backend when the
 * namespace names it again.
 *
 * Its transaction is open while it waits for the backend, which on PGlite holds every other
 * statement of the process (bounded.ts). So each pass asks every backend first (ping, with no
 * transaction open): one that gives no answer within `backendTimeoutMs` is not appended to this
 * pass (its rows wait; a fast refusal is an outage, handled as above). And every call made to it in
 * the transaction is bounded too: past the bound (BackendTimeoutError), its rows stay in the
 * outbox and the backend is not called again this pass. Never handed to the fallback: an append
 * that timed out may land later, and they would be stored twice. The next pass appends them again
 * to the same backend, where one that landed is a replay (same messageId and body), then deleted.
 * Nor by a later pass that finds the backend down, or the namespace moved: rows sent without an
 * answer are marked in PostgreSQL (relay-marks.ts, committed before they are sent) and go to no
 * other backend until that one confirmed them (relayed) or said it does not hold them.
 */
export function startRelay(deps: RelayDeps): Relay {
  const { db } = deps;
  const log = deps.ctx.logger.child({ component: 'wal-relay' });
  const batchSize = deps.batchSize ?? 500;
  const retryMs = deps.retryMs ?? 1_000;
  const timeoutMs = deps.backendTimeoutMs ?? RELAY_BACKEND_TIMEOUT_MS;
  let running = true;
  let again = false;
  let looping: Promise<number> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let unlisten: (() => Promise<void>) | undefined;

  /** Hands the rows to the namespace's backend (the relay's next pass appends them to a stream one). */
  async function redirect(
    trx: Transaction<WalTables>,
    ids: string[],
    to: BackendName,
    from: BackendName,
    namespace: string,
  ) {
    await handOn(trx, ids, to);
    log.info({ namespace, from, to, messages: ids.length }, 'namespace moved: rows relayed to its backend');
  }

  /** Moves the rows of one backend and namespace; answers how many left PostgreSQL's outbox, and whether some wait. */
  async function moveGroup(
    trx: Transaction<WalTables>,
    backend: StreamBackendName,
    group: WaitingRow[],
    silent: Set<StreamBackendName>,
  ): Promise<{ moved: number; waiting: boolean }> {
    const configured = deps.streams.get(backend);
    const first = group[0] as WaitingRow;
    const named = await namedBy(trx, first);
    let rows = group;
    let handedOn = 0;
    if (named && named.backend !== backend && named.fallback !== backend) {
      // Moved. Rows sent there without an answer may be stored there: asked of it first (below).
      const unsent = group.filter((r) => r.sent_to === null);
      if (unsent.length > 0)
        await redirect(
          trx,
          unsent.map((r) => r.id),
          named.backend,
          backend,
          first.namespace,
        );
      handedOn = unsent.length;
      rows = group.filter((r) => r.sent_to !== null);
      if (rows.length === 0) return { moved: handedOn, waiting: false };
    }
    const ids = rows.map((r) => r.id);
    const moved = { moved: handedOn + rows.length, waiting: false };
    const waiting = { moved: handedOn, waiting: true };
    // Gave no answer this pass: not called again (each call would hold the transaction its bound).
    if (silent.has(backend)) return waiting;
    // Its calls made in the transaction, bounded (see above; reopenIfNamed bounds the reopen).
    const stream = configured && {
      name: backend,
      append: (batch: WaitingRow[]) =>
        bounded(configured, 'append', timeoutMs, () => configured.append(batch, { revive: true })),
      reopen: (tenantId: string, namespace: string) => configured.reopen(tenantId, namespace),
    };
    let left = rows;
    try {
      if (!stream) throw new BackendUnavailableError(backend, `${backend} is not configured`);
      try {
        try {
          await stream.append(rows);
        } catch (error) {
          if (!(error instanceof NamespaceRetiredError)) throw error;
          // Retired there since it was read above: it moved off (to the namespace's backend now),
          // or moved back (reopened, then appended again). A retire in the middle of the append
          // (a NATS batch) left its first rows stored there: those are relayed (deleted here as
          // any appended), never handed on, where they would be delivered a second time.
          const stored = rows.filter((_, i) => error.stored[i] !== undefined).map((r) => r.id);
          if (stored.length > 0) {
            await sql`delete from wal.messages where id = any(${stored}::uuid[])`.execute(trx);
            left = rows.filter((_, i) => error.stored[i] === undefined);
            ids.splice(0, ids.length, ...left.map((r) => r.id));
          }
          if (!(await reopenIfNamed(trx, stream, first.tenant_id, first.namespace, timeoutMs))) {
            const now = await namedBy(trx, first, true);
            if (!now) return waiting;
            // It does not hold these (retired): handed on, marked or not.
            await redirect(trx, ids, now.backend, backend, first.namespace);
            return moved;
          }
          await stream.append(left);
        }
      } catch (error) {
        if (!(error instanceof AppError && error.code === 'IDEMPOTENCY_KEY_REUSED')) throw error;
        // One at a time, so only the conflicting messages become dead letters.
        for (const row of left) {
          try {
            await stream.append([row]);
          } catch (single) {
            if (!(single instanceof AppError && single.code === 'IDEMPOTENCY_KEY_REUSED')) throw single;
            await sql`
              update wal.messages set state = 'dead', dead_at = now(), sent_to = null,
                last_error = ${`messageId was already written to ${backend} with a different body`}
              where id = ${row.id}`.execute(trx);
            ids.splice(ids.indexOf(row.id), 1);
          }
        }
      }
      await sql`delete from wal.messages where id = any(${ids}::uuid[])`.execute(trx);
      return moved;
    } catch (error) {
      if (error instanceof BackendTimeoutError) {
        // It may still land: the rows wait for this backend, never for another (see above), in
        // this pass and the next ones (marked, committed with the pass).
        silent.add(backend);
        await markUnconfirmed(trx, ids, backend);
        log.warn({ err: error, backend, namespace: first.namespace }, 'backend gave no answer: rows wait');
        return waiting;
      }
      if (!(error instanceof BackendUnavailableError)) throw error;
      // Read in this transaction: on PGlite (one connection) a second one would wait for it forever.
      if (named?.fallback !== 'postgres') return waiting;
      // A refusal says nothing of an earlier append: rows sent without an answer wait for it.
      const unsent = rows.filter((r) => r.sent_to === null && ids.includes(r.id)).map((r) => r.id);
      if (unsent.length === 0) return waiting;
      await handOn(trx, unsent, 'postgres');
      log.warn(
        { backend, namespace: first.namespace, messages: unsent.length, waiting: ids.length - unsent.length },
        'backend down: relayed to postgres',
      );
      return unsent.length === ids.length ? moved : { moved: handedOn + unsent.length, waiting: true };
    }
  }

  /**
   * Each backend asked (ping, bounded) with no transaction open: those that answered, and those
   * that gave no answer within the bound (`silent`).
   */
  async function pingBackends() {
    const answering: StreamBackendName[] = [];
    const silent = new Set<StreamBackendName>();
    await Promise.all(
      [...deps.streams].map(async ([name, stream]) => {
        try {
          await bounded(stream, 'ping', timeoutMs, () => stream.ping());
          answering.push(name);
        } catch (error) {
          // A refusal (BackendUnavailableError) is an outage: the append fails fast too, and the
          // namespace's fallback applies.
          if (!(error instanceof BackendTimeoutError)) return;
          silent.add(name);
          log.debug({ err: error, backend: name }, 'backend gave no answer to a ping: its rows wait');
        }
      }),
    );
    return { answering, silent };
  }

  async function runOnce(): Promise<{ moved: number; waiting: boolean; more: boolean }> {
    const { answering, silent } = await pingBackends();
    // What is about to be sent is marked first, committed (relay-marks.ts).
    await markSending(db, answering, batchSize);
    return withSystem(db, async (trx) => {
      const { rows: lock } = await RELAY_LOCK.execute(trx);
      if (!(lock[0] as { locked: boolean }).locked) return { moved: 0, waiting: true, more: false };
      const { count, groups } = await readWaiting(trx, batchSize);
      let moved = 0;
      let waiting = false;
      for (const group of groups) {
        const backend = (group[0] as WaitingRow).backend as StreamBackendName;
        const outcome = await moveGroup(trx, backend, group, silent);
        moved += outcome.moved;
        waiting ||= outcome.waiting;
      }
      return { moved, waiting, more: count === batchSize && moved > 0 };
    });
  }

  async function loop(): Promise<number> {
    let total = 0;
    while (running) {
      again = false;
      try {
        const result = await runOnce();
        total += result.moved;
        if (result.waiting && !retry) {
          retry = setTimeout(() => {
            retry = undefined;
            wake();
          }, retryMs);
          retry.unref();
        }
        if (result.more) continue;
      } catch (error) {
        log.error({ err: error }, 'relay failed; trying again shortly');
        if (!retry) {
          retry = setTimeout(() => {
            retry = undefined;
            wake();
          }, retryMs);
          retry.unref();
        }
      }
      if (!again) break;
    }
    return total;
  }

  function wake(): void {
    if (!running) return;
    again = true;
    if (!looping) looping = loop().finally(() => (looping = undefined));
  }

  const safety = setInterval(wake, 5_000);
  safety.unref();
  void deps.ctx.db.listen('mercato_wal_relay', wake, wake).then((stop) => {
    if (running) unlisten = stop;
    else void stop();
  });
  wake();

  return {
    wake,
    async drain() {
      await looping;
      looping = loop().finally(() => (looping = undefined));
      return looping;
    },
    async stop() {
      running = false;
      clearInterval(safety);
      if (retry) clearTimeout(retry);
      await unlisten?.();
      await looping;
    },
  };
}
