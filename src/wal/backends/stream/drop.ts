import { backendsHolding, type Namespace } from '../../namespaces/namespace.ts';
import type { StreamBackend, StreamBackendName } from './contract.ts';

/**
 * Deletes what the namespace's stream backends (its backend, its fallback and those it is
 * draining, those this process has) hold for it. Throws BackendUnavailableError when one of them
 * cannot be reached.
 *
 * `retired`: instead, what the other stream backends this process has kept of it after a prune
 * retired it there (prune.ts): the fence (the Redis retired marker, the NATS stream refusing every
 * message) and finished messages' leftovers. For a namespace being deleted, once its row is gone
 * (no prune can then retire it anywhere); a backend where it is not retired is left alone.
 */
export async function dropStreamData(
  streams: ReadonlyMap<StreamBackendName, StreamBackend>,
  namespace: Namespace,
  which: 'holding' | 'retired' = 'holding',
): Promise<void> {
  const named = backendsHolding(namespace);
  const onlyRetired = which === 'retired';
  for (const [name, backend] of streams) {
    if (named.includes(name) !== onlyRetired)
      await backend.drop(namespace.tenantId, namespace.name, {
        createdAt: namespace.createdAt,
        ...(onlyRetired ? { onlyRetired } : {}),
      });
  }
}
