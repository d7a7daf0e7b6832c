import type { Namespace } from '../../namespaces/namespace.ts';
import type { StreamBackend, StreamBackendName } from './contract.ts';

/**
 * Deletes what the namespace's stream backends (its backend and its fallback, those this process
 * has) hold for it. Throws BackendUnavailableError when one of them cannot be reached. Messages
 * a namespace left on a backend it no longer names are not looked for.
 */
export async function dropStreamData(
  streams: ReadonlyMap<StreamBackendName, StreamBackend>,
  namespace: Namespace,
): Promise<void> {
  const named = new Set([namespace.backend, namespace.fallbackBackend]);
  for (const [name, backend] of streams) {
    if (named.has(name)) await backend.drop(namespace.tenantId, namespace.name);
  }
}
