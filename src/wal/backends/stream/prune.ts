import { type Kysely, sql, type Transaction } from 'kysely';
import { withSystem } from '../../../platform/db/index.ts';
import type { AppContext } from '../../../platform/index.ts';
import type { WalTables } from '../../tables.ts';
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

/**
 * Reopens `backend` to the namespace's writes when the namespace names it as its backend or its
 * fallback (it moved back after a prune retired it there), under a share lock on its row taken in
 * `trx`: a prune, which locks the row to update it, cannot retire the backend between this read
 * and the reopen. Answers whether the namespace names it (and so was reopened).
 */
export async function reopenIfNamed(
  trx: Transaction<WalTables>,
  stream: StreamBackend,
  tenantId: string,
  namespace: string,
): Promise<boolean> {
  const { rows } = await sql`
    select 1 from wal.namespaces
    where tenant_id = ${tenantId} and name = ${namespace}
      and (backend = ${stream.name} or fallback_backend = ${stream.name})
    for share`.execute(trx);
  if (rows.length === 0) return false;
  await stream.reopen(tenantId, namespace);
  return true;
}

/**
 * Takes `backend` off the namespace's draining backends when it holds nothing left to deliver,
 * after retiring the namespace there (atomically with that check: see above). Skips a namespace
 * another process is pruning or changing (its row is locked). Answers whether it pruned.
 */
export async function pruneDrainingBackend(
  db: Kysely<WalTables>,
  stream: StreamBackend,
  tenantId: string,
  namespace: string,
): Promise<boolean> {
  return withSystem(db, async (trx) => {
    const { rows } = await sql`
      select 1 from wal.namespaces
      where tenant_id = ${tenantId} and name = ${namespace} and ${stream.name} = any(draining_backends)
      for no key update skip locked`.execute(trx);
    if (rows.length === 0) return false;
    if (!(await stream.retire(tenantId, namespace))) return false;
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
 * them take turns. A backend that cannot be reached is tried again on the next pass.
 */
export function startDrainPruner(deps: DrainPrunerDeps): DrainPruner {
  const { db, streams } = deps;
  const intervalMs = deps.intervalMs ?? 30_000;
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
    for (const row of rows) {
      for (const name of row.draining_backends) {
        const stream = streams.get(name);
        if (!stream || stopped || down.has(name)) continue;
        const key = `${name}\u0000${row.tenant_id}\u0000${row.name}`;
        seen.add(key);
        const wait = later.get(key);
        if (wait && wait.at > Date.now()) continue;
        try {
          if (await pruneDrainingBackend(db, stream, row.tenant_id, row.name)) {
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
          if (err instanceof BackendUnavailableError) {
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
