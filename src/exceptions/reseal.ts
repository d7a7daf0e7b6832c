import { sql } from 'kysely';
import type { AppContext } from '../platform/context.ts';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { secretBoxOf } from '../platform/secrets.ts';
import { SecretUnreadableError } from './secrets.ts';
import { openSecrets, sealedUnderCurrentKey, sealSecrets } from './source-store.ts';
import type { ExceptionsDb } from './tables.ts';

/** What `mercato exceptions reseal-secrets` did: sources sealed again, already current, unreadable. */
export type ResealResult = {
  resealed: number;
  current: number;
  /** Sealed under a key neither current nor previous (or altered): their secrets must be stored again. */
  unreadable: { tenantId: string; interfaceType: string }[];
};

/**
 * Seals every source's secrets again under the current MERCATO_SECRETS_KEY, after a rotation:
 * each one sealed under a previous key (MERCATO_SECRETS_KEY_PREVIOUS, or the derived key) is
 * opened and sealed anew, tenant by tenant, each row locked while it changes. Once it reports
 * nothing unreadable, the previous keys may be dropped from the configuration.
 */
export async function resealSecrets(ctx: AppContext, db: ExceptionsDb): Promise<ResealResult> {
  const box = secretBoxOf(ctx);
  await box.ready();
  const tenants = await withSystem(db, async (trx) => {
    const { rows } = await sql<{ id: string }>`select id from identity.tenants order by id`.execute(trx);
    return rows.map((r) => r.id);
  });
  const result: ResealResult = { resealed: 0, current: 0, unreadable: [] };
  for (const tenantId of tenants) {
    await withTenant(db, tenantId, async (trx) => {
      const rows = await trx
        .selectFrom('exceptions.sources')
        .selectAll()
        .where('credentials_encrypted', 'is not', null)
        .orderBy('interface_type')
        .forUpdate()
        .execute();
      for (const row of rows) {
        try {
          if (await sealedUnderCurrentKey(box, row)) {
            result.current += 1;
            continue;
          }
          const secrets = await openSecrets(box, row);
          const sealed = await sealSecrets(box, tenantId, row.interface_type, secrets);
          await trx
            .updateTable('exceptions.sources')
            .set({ credentials_encrypted: sealed })
            .where('tenant_id', '=', tenantId)
            .where('interface_type', '=', row.interface_type)
            .execute();
          result.resealed += 1;
        } catch (error) {
          if (!(error instanceof SecretUnreadableError)) throw error;
          result.unreadable.push({ tenantId, interfaceType: row.interface_type });
        }
      }
    });
  }
  return result;
}
