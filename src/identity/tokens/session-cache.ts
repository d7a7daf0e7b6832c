import type { Role } from '../../platform/http/index.ts';

/** The channel session revocations are announced on, with the user's id (migration 0012). */
export const SESSION_CHANGES_CHANNEL = 'mercato_identity_sessions';

/** What the database says about a user and one of their sessions. */
export type SessionRecord = { status: string; role: Role; sessionLive: boolean };

/** Why an access token no longer stands, or undefined when it does. */
export type SessionVerdict = undefined | 'session revoked' | 'account disabled' | 'role changed';

export type SessionCache = {
  /**
   * Judges the token's session from the cache, or from what load() returns on a miss (one
   * query; undefined when the user is gone from the tenant). The answer is cached unless an
   * invalidation overlapped the load.
   */
  check(
    token: { tenantId: string; userId: string; sessionId: string; role: Role },
    load: () => Promise<SessionRecord | undefined>,
  ): Promise<SessionVerdict>;
  /** Forgets the user and all their sessions (a change to the user, a revoked session). */
  invalidate(userId: string): void;
  /** Forgets everything (notifications may have been missed). */
  clear(): void;
  /** Checks go to load() every time until enable() (called once notifications flow). */
  enable(): void;
  readonly size: number;
};

type UserEntry = {
  tenantId: string;
  status: string;
  role: Role;
  /** sid -> live? Revoked sessions stay revoked, so both answers are kept. */
  sessions: Map<string, boolean>;
  expiresAt: number;
};

const MAX_SESSIONS_PER_USER = 100;

function verdict(entry: { status: string; role: Role }, live: boolean, role: Role): SessionVerdict {
  if (!live) return 'session revoked';
  if (entry.status !== 'active') return 'account disabled';
  if (entry.role !== role) return 'role changed';
  return undefined;
}

/**
 * A per-process cache of {user status, user role, session revoked?} keyed by user and session
 * id. Entries are dropped when the database announces a change to the user or a revoked
 * session (NOTIFY, on every process) and live ttlMs at most as a safety net. A load that
 * overlapped any invalidation is not cached, so a slow read never puts back what a revocation
 * just removed.
 */
export function createSessionCache(
  options: { ttlMs?: number; maxUsers?: number; now?: () => number } = {},
): SessionCache {
  const { ttlMs = 60_000, maxUsers = 10_000, now = Date.now } = options;
  const users = new Map<string, UserEntry>();
  let invalidations = 0;
  let enabled = false;
  return {
    async check(token, load) {
      if (enabled) {
        const hit = users.get(token.userId);
        const live = hit?.sessions.get(token.sessionId);
        if (hit && live !== undefined && hit.expiresAt > now() && hit.tenantId === token.tenantId)
          return verdict(hit, live, token.role);
      }
      const before = invalidations;
      const record = await load();
      if (!record) return 'account disabled';
      if (enabled && before === invalidations) {
        let entry = users.get(token.userId);
        if (!entry || entry.tenantId !== token.tenantId || entry.expiresAt <= now()) {
          users.delete(token.userId);
          entry = {
            tenantId: token.tenantId,
            status: '',
            role: record.role,
            sessions: new Map(),
            expiresAt: 0,
          };
          users.set(token.userId, entry);
          if (users.size > maxUsers) users.delete(users.keys().next().value as string);
        }
        entry.status = record.status;
        entry.role = record.role;
        entry.expiresAt = now() + ttlMs;
        entry.sessions.set(token.sessionId, record.sessionLive);
        if (entry.sessions.size > MAX_SESSIONS_PER_USER)
          entry.sessions.delete(entry.sessions.keys().next().value as string);
      }
      return verdict(record, record.sessionLive, token.role);
    },
    invalidate(userId) {
      invalidations += 1;
      users.delete(userId);
    },
    clear() {
      invalidations += 1;
      users.clear();
    },
    enable() {
      enabled = true;
    },
    get size() {
      return users.size;
    },
  };
}
