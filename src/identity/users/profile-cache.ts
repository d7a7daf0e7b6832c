import type { User } from './user-store.ts';

/** The channel identity.users changes are announced on (migration 0006). */
export const USER_CHANGES_CHANNEL = 'mercato_identity_users';

export type ProfileCache = {
  /** The cached user, or what load() returns (cached unless something changed meanwhile). */
  read(tenantId: string, userId: string, load: () => Promise<User | undefined>): Promise<User | undefined>;
  invalidate(userId: string): void;
  clear(): void;
  /** Reads go straight to load() until enable() (called once change notifications flow). */
  enable(): void;
  readonly size: number;
};

/**
 * A per-process cache of profile reads. Entries live ttlMs at most and are dropped when the
 * database announces a change to the user, on every process. A load that overlapped any
 * invalidation is not cached, so a slow read can never put back what a change just removed.
 */
export function createProfileCache(options: {
  ttlMs: number;
  maxEntries?: number;
  now?: () => number;
}): ProfileCache {
  const { ttlMs, maxEntries = 10_000, now = Date.now } = options;
  const entries = new Map<string, { user: User; expiresAt: number }>();
  let invalidations = 0;
  let enabled = false;
  return {
    async read(tenantId, userId, load) {
      if (!enabled || ttlMs <= 0) return load();
      const hit = entries.get(userId);
      if (hit && hit.expiresAt > now() && hit.user.tenantId === tenantId) return hit.user;
      const before = invalidations;
      const user = await load();
      if (user && before === invalidations) {
        entries.delete(userId);
        entries.set(userId, { user, expiresAt: now() + ttlMs });
        if (entries.size > maxEntries) entries.delete(entries.keys().next().value as string);
      }
      return user;
    },
    invalidate(userId) {
      invalidations += 1;
      entries.delete(userId);
    },
    clear() {
      invalidations += 1;
      entries.clear();
    },
    enable() {
      enabled = true;
    },
    get size() {
      return entries.size;
    },
  };
}
