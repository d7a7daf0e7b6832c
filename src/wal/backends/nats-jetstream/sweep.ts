import type { Logger } from '../../../platform/observability/index.ts';
import type { Namespace } from '../../namespaces/namespace.ts';
import type { Core } from './core.ts';
import { namespaceNames } from './names.ts';
import { readState } from './state.ts';

/** How often a consumer sweeps the state of the namespaces it serves. */
export const SWEEP_INTERVAL_MS = 60_000;

/**
 * Deletes the KV state of messages delivered longer than deliveredRetentionSeconds ago (and of dead
 * ones past deadRetentionSeconds; their dead letter is in PostgreSQL). Walks the namespace's keys:
 * fine for modest volumes; the delete is fenced by revision. Answers how many it deleted.
 */
export async function sweepNamespace(core: Core, ns: Namespace, now = Date.now()): Promise<number> {
  const kv = await core.kv();
  const names = namespaceNames(core.options.prefix, ns.tenantId, ns.name);
  const keys: string[] = [];
  for await (const key of await kv.keys(`${names.hash}.*`)) keys.push(key);
  let deleted = 0;
  for (const key of keys) {
    const found = await readState(kv, key);
    if (!found) continue;
    const s = found.state;
    const expired =
      (s.state === 'delivered' && (s.deliveredAt ?? now) + ns.deliveredRetentionSeconds * 1000 <= now) ||
      (s.state === 'dead' && (s.deadAt ?? now) + ns.deadRetentionSeconds * 1000 <= now);
    if (!expired) continue;
    try {
      await kv.delete(key, { previousSeq: found.revision });
      deleted++;
    } catch {
      // Changed meanwhile (a revive): kept.
    }
  }
  return deleted;
}

export function startSweeper(core: Core, namespaces: () => Namespace[], log: Logger): { stop(): void } {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void (async () => {
      for (const ns of namespaces()) {
        try {
          await sweepNamespace(core, ns);
        } catch (err) {
          log.warn({ err, namespace: ns.name }, 'retention sweep failed');
        }
      }
    })().finally(() => {
      running = false;
    });
  }, SWEEP_INTERVAL_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
