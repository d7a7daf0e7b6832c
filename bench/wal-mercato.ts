/**
 * The Mercato side every part of `npm run bench:wal` shares: the bench database (created once,
 * migrated, one tenant), a context on it, and namespaces created there like the API creates them.
 */
import type { Kysely } from 'kysely';
import { createTenant } from '../src/identity/tenants/index.ts';
import { loadConfig } from '../src/platform/config/index.ts';
import { migrate, withTenant } from '../src/platform/db/index.ts';
import type { AppContext } from '../src/platform/index.ts';
import { closeContext, createContext } from '../src/platform/runtime.ts';
import { secretBoxOf } from '../src/platform/secrets.ts';
import { createNamespace, type Namespace } from '../src/wal/namespaces/index.ts';
import type { NamespaceInput } from '../src/wal/namespaces/validate.ts';
import type { WalTables } from '../src/wal/tables.ts';
import { ADMIN_EMAIL, adminUrl, MERCATO_DB, PASSWORD, sqlAt, urlOf } from './wal-common.ts';

export type MercatoBench = {
  ctx: AppContext;
  db: Kysely<WalTables>;
  tenantId: string;
  /** Creates a namespace of the bench tenant (names must be unique per run). */
  namespace(name: string, input: NamespaceInput): Promise<Namespace>;
  close(): Promise<void>;
};

/** Creates the bench database afresh with one tenant `bench`; returns its id. */
export async function setupMercatoDatabase(): Promise<string> {
  await sqlAt(adminUrl, `drop database if exists ${MERCATO_DB} with (force)`);
  await sqlAt(adminUrl, `create database ${MERCATO_DB}`);
  const bench = await openMercato('');
  try {
    await migrate(bench.ctx.db);
    const { tenant } = await createTenant(bench.ctx.db.kysely as never, {
      slug: 'bench',
      name: 'Bench',
      adminEmail: ADMIN_EMAIL,
      adminPassword: PASSWORD,
    });
    return tenant.id;
  } finally {
    await bench.close();
  }
}

/** A context on the bench database (no Redis or NATS: the benchmark opens its own clients). */
export async function openMercato(tenantId: string): Promise<MercatoBench> {
  const config = loadConfig({ DATABASE_URL: urlOf(MERCATO_DB), LOG_LEVEL: 'warn', MERCATO_DEMO: 'false' });
  const ctx = await createContext(config);
  const db = ctx.db.kysely as Kysely<WalTables>;
  const change = { tenantId, actor: 'bench' };
  return {
    ctx,
    db,
    tenantId,
    namespace: (name, input) =>
      withTenant(db, tenantId, (trx) =>
        createNamespace(trx, change, name, { maxDelayMs: 60_000, ...input }, secretBoxOf(ctx)),
      ),
    close: () => closeContext(ctx),
  };
}

/** An internal target calling handler `handler`. */
export const internalTarget = (handler: string) => ({
  type: 'internal',
  handler,
  name: handler,
  enabled: true,
});

/** Drops the bench database. */
export async function dropMercatoDatabase(): Promise<void> {
  await sqlAt(adminUrl, `drop database if exists ${MERCATO_DB} with (force)`);
}
