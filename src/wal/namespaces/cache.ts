import type { Kysely } from 'kysely';
import { withSystem } from '../../platform/db/index.ts';
import type { AppContext } from '../../platform/index.ts';
import type { WalTables } from '../tables.ts';
import type { Namespace, NamespaceCache } from './namespace.ts';
import { getNamespace, listEnabledNamespaces } from './store.ts';
import type { SystemTargets } from './system-targets.ts';

/** The channel wal.namespaces changes are announced on (migration 0007), payload `<tenantId>/<name>`. */
export const NAMESPACE_CHANGES_CHANNEL = 'mercato_wal_namespaces';
const MAX_ENTRIES = 10_000;

/**
 * Namespaces by (tenant, name), read in system context (the delivery engine serves every
 * tenant) and kept until the database announces a change, on every process. Until start() has
 * subscribed, reads go straight to the database. A load that overlapped an invalidation is not
 * kept, so a slow read never puts back what a change just removed. System namespaces come back
 * with the internal targets modules declared (`systemTargets`) merged in.
 */
export function createNamespaceCache(
  ctx: AppContext,
  db: Kysely<WalTables>,
  systemTargets?: SystemTargets,
): NamespaceCache & { readonly size: number } {
  const merged = (namespace: Namespace | undefined) => systemTargets?.apply(namespace) ?? namespace;
  const entries = new Map<string, Namespace | undefined>();
  let everything: Namespace[] | undefined;
  let generation = 0;
  let listening = false;
  let unlisten: (() => Promise<void>) | undefined;
  const keyOf = (tenantId: string, name: string) => `${tenantId}/${name}`;

  const listeners = new Set<() => void>();
  const changed = () => {
    for (const listener of listeners) listener();
  };
  const clear = () => {
    generation += 1;
    entries.clear();
    everything = undefined;
    changed();
  };
  const invalidate = (tenantId: string, name: string) => {
    generation += 1;
    entries.delete(keyOf(tenantId, name));
    everything = undefined;
    changed();
  };

  return {
    async get(tenantId, name) {
      const key = keyOf(tenantId, name);
      // Kept merged: a hit (every lease and delivery) returns the entry as it is.
      if (listening && entries.has(key)) return entries.get(key);
      const before = generation;
      const namespace = merged(await withSystem(db, (trx) => getNamespace(trx, tenantId, name)));
      if (listening && before === generation) {
        entries.set(key, namespace);
        // Misses are cached too (a producer may name namespaces that do not exist): bound the map.
        if (entries.size > MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
      }
      return namespace;
    },
    peek(tenantId, name) {
      return listening ? entries.get(keyOf(tenantId, name)) : undefined;
    },
    mark: () => (listening ? generation : -1),
    remember(mark, tenantId, name, stored) {
      if (!listening || mark !== generation) return;
      entries.set(keyOf(tenantId, name), merged(stored));
      if (entries.size > MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
    },
    async all() {
      if (listening && everything) return everything;
      const before = generation;
      const stored = await withSystem(db, (trx) => listEnabledNamespaces(trx));
      const list = systemTargets ? stored.map((n) => systemTargets.apply(n)) : stored;
      if (listening && before === generation) everything = list;
      return list;
    },
    invalidate,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Cached (tenant, name) entries, for tests and metrics. */
    get size() {
      return entries.size;
    },
    async start() {
      if (unlisten) return;
      unlisten = await ctx.db.listen(
        NAMESPACE_CHANGES_CHANNEL,
        (payload) => {
          const slash = payload.indexOf('/');
          if (slash < 0) clear();
          else invalidate(payload.slice(0, slash), payload.slice(slash + 1));
        },
        clear,
      );
      clear();
      listening = true;
    },
    async stop() {
      listening = false;
      clear();
      const stop = unlisten;
      unlisten = undefined;
      await stop?.();
    },
  };
}
