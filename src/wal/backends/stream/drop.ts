import { backendsHolding, type Namespace } from '../../namespaces/namespace.ts';
import type { StreamBackend, StreamBackendName } from './contract.ts';

/**
 * Deletes what the namespace's stream backends (its backend, its fallback and those it is
 * draining, those this process has) hold for it. Throws BackendUnavailableError when one of them
 * cannot be reached.
 */
export async function dropStreamData(
  streams: ReadonlyMap<StreamBackendName, StreamBackend>,
  namespace: Namespace,
): Promise<void> {
  const named = backendsHolding(namespace);
  for (const [name, backend] of streams) {
    if (named.includes(name)) await backend.drop(namespace.tenantId, namespace.name);
  }
}
