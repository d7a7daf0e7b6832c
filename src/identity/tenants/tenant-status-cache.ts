import type { Kysely } from 'kysely';
import { withSystem } from '../../platform/db/index.ts';
import { AppError } from '../../platform/http/index.ts';
import type { IdentityTables } from '../tables.ts';

/** The channel tenant status changes are announced on, as '<tenant id>:<status>' (migration 0013). */
export const TENANT_CHANGES_CHANNEL = 'mercato_identity_tenants';

/** After the listening connection dropped, the suspended set is read again this much later. */
const RELOAD_AFTER_RESET_MS = 2_000;

type Listen = (
  channel: string,
  onMessage: (payload: string) => void,
  onReset?: () => void,
) => Promise<() => Promise<void>>;

export type TenantStatusCache = {
  /** Throws 403 TENANT_SUSPENDED when the tenant is suspended. */
  assertActive(tenantId: string): Promise<void>;
  /** Records a change this process made (every process also hears it through NOTIFY). */
  set(tenantId: string, status: 'active' | 'suspended'): void;
  /** Listens for changes and loads the suspended tenants; until then every check reads the database. */
  start(listen: Listen): Promise<() => Promise<void>>;
};

function suspended(): never {
  throw new AppError('TENANT_SUSPENDED', 'this tenant is suspended; contact the platform operator');
}

/**
 * Which tenants are suspended, per process. Suspensions are rare, so the whole set is kept in
 * memory: a check is a Set lookup. Every change is announced by the database on commit, so a
 * suspension takes effect on every process as soon as the notification arrives.
 */
export function createTenantStatusCache(db: Kysely<IdentityTables>): TenantStatusCache {
  let ids = new Set<string>();
  let ready = false;
  let changes = 0;
  let stopped = false;

  const loadSuspended = async () =>
    withSystem(db, (trx) =>
      trx.selectFrom('identity.tenants').select('id').where('status', '=', 'suspended').execute(),
    );

  async function load(): Promise<void> {
    for (;;) {
      const before = changes;
      const rows = await loadSuspended();
      // A change heard while reading may be newer than what was read: read again.
      if (before !== changes) continue;
      ids = new Set(rows.map((r) => r.id));
      ready = true;
      return;
    }
  }

  const set = (tenantId: string, status: 'active' | 'suspended') => {
    changes += 1;
    if (status === 'suspended') ids.add(tenantId);
    else ids.delete(tenantId);
  };

  return {
    async assertActive(tenantId) {
      if (ready) {
        if (ids.has(tenantId)) suspended();
        return;
      }
      const row = await withSystem(db, (trx) =>
        trx.selectFrom('identity.tenants').select('status').where('id', '=', tenantId).executeTakeFirst(),
      );
      if (row?.status === 'suspended') suspended();
    },
    set,
    async start(listen) {
      const unlisten = await listen(
        TENANT_CHANGES_CHANNEL,
        (payload) => {
          const [id, status] = payload.split(':');
          if (id && (status === 'active' || status === 'suspended')) set(id, status);
        },
        () => {
          // Changes may have been missed: check the database until the set is read again.
          ready = false;
          changes += 1;
          setTimeout(() => {
            if (!stopped) load().catch(() => {});
          }, RELOAD_AFTER_RESET_MS).unref();
        },
      );
      await load();
      return async () => {
        stopped = true;
        ready = false;
        await unlisten();
      };
    },
  };
}
