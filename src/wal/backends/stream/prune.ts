import { type Kysely, sql, type Transaction } from 'kysely';
import { withSystem } from '../../../platform/db/index.ts';
import type { AppContext } from '../../../platform/index.ts';
import type { WalTables } from '../../tables.ts';
import { BackendTimeoutError, bounded } from './bounded.ts';
import { BackendUnavailableError, type StreamBackend, type StreamBackendName } from './contract.ts';

// The pruning of draining backends (migrations 0056 and 0057).
//
// A namespace that moved off a stream backend lists it in `draining_backends`: its consumers go on
// serving the namespace there until what it held is delivered. Once that backend holds nothing of
// it left to deliver, the pruner takes it off the list, and the consumers stop polling it.
//
// A write decides its backend from the namespace as it read it: an HTTP write from its process's
// cache (dropped on every change, but not under a write already on its way), an outbox row from
// its transaction's snapshot, appended by the relay maybe much later (the backend was down). So a
// write to the old backend may come at any time after the move, and no grace period would be
// enough on its own. Instead, the check that nothing is left and the closing of that backend to
// the namespace's writes are one atomic step on the backend (StreamBackend.retire): a write
// either landed before (the check sees it: nothing is pruned) or is refused after
// (NamespaceRetiredError), and its writer reads the namespace again and writes where it is now
// (write/append.ts, relay.ts).
//
// The prune holds the namespace's row (FOR NO KEY UPDATE) from its read to its commit: no change of
// the namespace, and no reopen (below), runs in between.
//
// So its transaction is open while it waits for the backend, which on PGlite holds every other
// statement of the process (bounded.ts): a Redis command has no timeout, a NATS request one per
// request (2 s by default). So the retire is bounded (`backendTimeoutMs`): past it the prune gives
// up (BackendUnavailableError: the retire is idempotent, and the prune writes nowhere else), its
// transaction rolls back, and the retire, told so (its signal), takes no further step that closes
// the namespace or lets go of its states (a late one would be harmless on Redis, one script;
// NATS's has several). And the pruner asks each backend (ping, bounded too) before it opens a
// transaction for it: one that does not answer is not pruned this pass, with no statement held
// meanwhile.

/** How long the prune (and a reopen) waits for a backend's answer, by default (see above). */
export const PRUNE_BACKEND_TIMEOUT_MS = 2_000;

/**
 * Reopens `backend` to the namespace's writes when the namespace names it as its backend or its
 * fallback (it moved back after a prune retired it there), under a share lock on its row taken in
 * `trx`: a prune, which locks the row to update it, cannot retire the backend between this read
 * and the reopen. Answers whether the namespace names it (and so was reopened).
 *
 * `trx` is open while the backend answers, so the reopen is bounded like the retire (`ms`,
 * default PRUNE_BACKEND_TIMEOUT_MS): past it, BackendTimeoutError, and the caller rolls back (a
 * reopen is idempotent: a late one only reopens a namespace that names the backend).
 */
export async function reopenIfNamed(
  trx: Transaction<WalTables>,
  stream: Pick<StreamBackend, 'name' | 'reopen'>,
  tenantId: string,
  namespace: string,
  ms = PRUNE_BACKEND_TIMEOUT_MS,
): Promise<boolean> {
  const { rows } = await sql`
    select 1 from wal.namespaces
    where tenant_id = ${tenantId} and name = ${namespace}
      and (backend = ${stream.name} or fallback_backend = ${stream.name})
    for share`.execute(trx);
  if (rows.length === 0) return false;
  await bounded(stream, 'reopen', ms, () => stream.reopen(tenantId, namespace));
  return true;
}

/**
 * Takes `backend` off the namespace's draining backends when it holds nothing left to deliver,
 * after retiring the namespace there (atomically with that check: see above). Skips a namespace
 * another process is pruning or changing (its row is locked). Answers whether it pruned. Throws
 * BackendUnavailableError when the backend cannot be reached, or gives no answer to the retire
 * within `backendTimeoutMs` (default PRUNE_BACKEND_TIMEOUT_MS): the transaction waits no longer.
 */
export async function pruneDrainingBackend(
  db: Kysely<WalTables>,
  stream: StreamBackend,
  tenantId: string,
  namespace: string,
  options: { backendTimeoutMs?: number } = {},
): Promise<boolean> {
  const ms = options.backendTimeoutMs ?? PRUNE_BACKEND_TIMEOUT_MS;
  return withSystem(db, async (trx) => {
    const { rows } = await sql`
      select 1 from wal.namespaces
      where tenant_id = ${tenantId} and name = ${namespace} and ${stream.name} = any(draining_backends)
      for no key update skip locked`.execute(trx);
    if (rows.length === 0) return false;
    // Outbox rows the relay sent there without an answer (relay-marks.ts) may be stored there, and
    // be delivered, its record of them let go with the retire: it must answer for them first.
    const { rows: unconfirmed } = await sql`
      select 1 from wal.messages
      where tenant_id = ${tenantId} and namespace = ${namespace} and sent_to = ${stream.name}
      limit 1`.execute(trx);
    if (unconfirmed.length > 0) return false;
    const retired = await bounded(
      stream,
      'retire',
      ms,
      (signal) => stream.retire(tenantId, namespace, { signal }),
      BackendUnavailableError,
    );
    if (!retired) return false;
    // Migration 0057's trigger keeps an update that only takes entries off the list.
    await sql`
      update wal.namespaces set draining_backends = array_remove(draining_backends, ${stream.name}::text)
      where tenant_id = ${tenantId} and name = ${namespace}`.execute(trx);
    return true;
  });
}

export type DrainPrunerDeps = {
  ctx: AppContext;
  db: Kysely<WalTables>;
  streams: ReadonlyMap<StreamBackendName, StreamBackend>;
  /** How often the namespaces still draining a backend are looked at. (Default: 30000) */
  intervalMs?: number;
  /** How long a backend's answer is waited for. (Default: PRUNE_BACKEND_TIMEOUT_MS) */
  backendTimeoutMs?: number;
};

export type DrainPruner = {
  /** One pass over every namespace draining a backend this process has; answers how many it pruned. */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
};

/** A namespace found holding something is looked at again after twice as long, up to this many passes. */
const MAX_BACKOFF_PASSES = 20;

/**
 * Looks, every `intervalMs`, at each namespace still draining a stream backend this process has
 * (the partial index namespaces_draining) and prunes that backend once it is empty. One found
 * holding something is looked at again after 1, 2, 4, … up to 20 intervals (10 minutes by default):
 * a move of every system namespace at once (MERCATO_EVENTS_BACKEND changed) leaves thousands
 * draining, most of them for a while. Every process that delivers runs it; the row lock makes
 * them take turns. A backend that cannot be reached, or does not answer a ping (asked once a pass,
 * before any transaction is opened for it), is tried again on the next pass.
 */
export function startDrainPruner(deps: DrainPrunerDeps): DrainPruner {
  const { db, streams } = deps;
  const intervalMs = deps.intervalMs ?? 30_000;
  const backendTimeoutMs = deps.backendTimeoutMs ?? PRUNE_BACKEND_TIMEOUT_MS;
  const log = deps.ctx.logger.child({ component: 'wal-drain-pruner' });
  let running: Promise<number> | undefined;
  let stopped = false;
  /** By backend, tenant and namespace: when to look again, and the passes waited last time. */
  const later = new Map<string, { at: number; passes: number }>();

  async function pass(): Promise<number> {
    const { rows } = await withSystem(db, (trx) =>
      sql<{ tenant_id: string; name: string; draining_backends: StreamBackendName[] }>`
        select tenant_id, name, draining_backends from wal.namespaces
        where cardinality(draining_backends) > 0`.execute(trx),
    );
    let pruned = 0;
    const seen = new Set<string>();
    // A backend that cannot be reached is tried again on the next pass, not once per namespace.
    const down = new Set<StreamBackendName>();
    const answered = new Set<StreamBackendName>();
    for (const row of rows) {
      for (const name of row.draining_backends) {
        const stream = streams.get(name);
        if (!stream || stopped || down.has(name)) continue;
        const key = `${name}\u0000${row.tenant_id}\u0000${row.name}`;
        seen.add(key);
        const wait = later.get(key);
        if (wait && wait.at > Date.now()) continue;
        try {
          // Asked with no transaction open: one that does not answer holds no statement (above).
          if (!answered.has(name)) {
            await bounded(stream, 'ping', backendTimeoutMs, () => stream.ping(), BackendUnavailableError);
            answered.add(name);
          }
          if (await pruneDrainingBackend(db, stream, row.tenant_id, row.name, { backendTimeoutMs })) {
            pruned += 1;
            later.delete(key);
            log.info(
              { tenantId: row.tenant_id, namespace: row.name, backend: name },
              'draining backend holds nothing more of the namespace: no longer served there',
            );
          } else {
            const passes = Math.min(MAX_BACKOFF_PASSES, (wait?.passes ?? 0.5) * 2);
            later.set(key, { at: Date.now() + passes * intervalMs - intervalMs / 2, passes });
          }
        } catch (err) {
          if (err instanceof BackendUnavailableError || err instanceof BackendTimeoutError) {
            down.add(name);
            log.debug({ err, backend: name }, 'draining backend unreachable: pruning it waits');
          } else log.warn({ err, namespace: row.name, backend: name }, 'could not prune a draining backend');
        }
      }
    }
    for (const key of later.keys()) if (!seen.has(key)) later.delete(key);
    return pruned;
  }

  function runOnce(): Promise<number> {
    if (!running) running = pass().finally(() => (running = undefined));
    return running;
  }

  const timer = setInterval(() => {
    if (!stopped && streams.size > 0) runOnce().catch((err: unknown) => log.warn({ err }, 'pruning failed'));
  }, intervalMs);
  timer.unref();

  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
