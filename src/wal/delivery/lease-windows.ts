import type { LeasedMessage, LeaseWindows } from '../backends/postgres/queue.ts';
import type { Outcome } from './deliver-message.ts';
import { namespaceKey } from './namespace-slots.ts';

/** A namespace may hold this many times its concurrency: leased ahead of a free slot. */
export const PREFETCH = 16;

/**
 * What each namespace holds once `recording` is recorded: the lease fills each one's room.
 * `held`: the engine's leased messages whose outcome is not recorded yet.
 */
export function leaseWindows(
  held: Iterable<LeasedMessage>,
  recording: Outcome[],
  maxConcurrency: number,
  tenantShare: number,
): LeaseWindows {
  const leaving = new Set(recording.map((o) => ('complete' in o ? o.complete.id : o.fail.id)));
  const counts = new Map<string, { tenantId: string; namespace: string; count: number }>();
  for (const message of held) {
    if (leaving.has(message.id)) continue;
    const key = namespaceKey(message);
    const entry = counts.get(key);
    if (entry) entry.count++;
    else counts.set(key, { tenantId: message.tenantId, namespace: message.namespace, count: 1 });
  }
  return { held: [...counts.values()], maxConcurrency, prefetch: PREFETCH, tenantShare };
}
