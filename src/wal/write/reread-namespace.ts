import { type Kysely, sql } from 'kysely';
import { withSystem } from '../../platform/db/index.ts';
import { AppError } from '../../platform/http/index.ts';
import { BackendTimeoutError } from '../backends/stream/bounded.ts';
import {
  BackendUnavailableError,
  backendUnavailable,
  type NamespaceRetiredError,
  type StreamBackend,
} from '../backends/stream/contract.ts';
import { reopenIfNamed } from '../backends/stream/prune.ts';
import type { Namespace, NamespaceCache } from '../namespaces/index.ts';
import type { WalTables } from '../tables.ts';
import { requireEnabled } from './prepare.ts';

export type Reread = {
  db: Kysely<WalTables>;
  namespaces: Pick<NamespaceCache, 'get' | 'peek' | 'invalidate'>;
  /** How long a reopen waits for the backend, its transaction open. (Default: PRUNE_BACKEND_TIMEOUT_MS) */
  backendTimeoutMs?: number;
};

/**
 * The namespace read again after a stream backend refused `current` as retired (append.ts): the
 * cached copy dropped (unless a change was heard since, which already replaced it), and refused as
 * a first write would refuse it: 404 when it was deleted, 403 TENANT_SUSPENDED when its tenant was
 * suspended meanwhile (`paused`, migration 0013; a first write is refused at authentication), 409
 * NAMESPACE_DISABLED when it was disabled. When it names the refusing backend again (it moved
 * back), that backend is reopened to it, under a share lock on its row (prune.ts), bounded: a
 * backend that does not answer (or cannot be reached) makes it 503 BACKEND_UNAVAILABLE.
 */
export async function rereadNamespace(
  reread: Reread,
  stream: StreamBackend | undefined,
  current: Namespace,
  refused: NamespaceRetiredError,
): Promise<Namespace> {
  const { tenantId, name } = current;
  const cached = reread.namespaces.peek(tenantId, name);
  if (!cached || cached.backend === refused.backend || cached.fallbackBackend === refused.backend)
    reread.namespaces.invalidate(tenantId, name);
  const fresh = await reread.namespaces.get(tenantId, name);
  if (!fresh) throw new AppError('NOT_FOUND', `namespace ${name} not found`);
  await withSystem(reread.db, async (trx) => {
    const { rows } = await sql<{ paused: boolean }>`
      select paused from wal.namespaces where tenant_id = ${tenantId} and name = ${name}`.execute(trx);
    if (rows[0]?.paused) {
      throw new AppError('TENANT_SUSPENDED', 'this tenant is suspended; contact the platform operator');
    }
    requireEnabled(fresh);
    if (stream && (fresh.backend === refused.backend || fresh.fallbackBackend === refused.backend)) {
      try {
        await reopenIfNamed(trx, stream, tenantId, name, reread.backendTimeoutMs);
      } catch (error) {
        // Bounded (its transaction holds, on PGlite, every statement of the process): 503, and
        // the writer retries; nothing was written, the rows go nowhere else.
        if (!(error instanceof BackendTimeoutError || error instanceof BackendUnavailableError)) throw error;
        throw backendUnavailable(
          `namespace ${name} moved back to ${refused.backend}, which cannot be reopened to it now; retry shortly`,
          {},
          error,
        );
      }
    }
  });
  return fresh;
}
