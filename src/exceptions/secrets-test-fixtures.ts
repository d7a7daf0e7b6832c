import type { AppContext } from '../platform/context.ts';
import { withTenant } from '../platform/db/index.ts';
import { createSecretBox } from './secrets.ts';
import { openSecrets, type SourceSecrets, sealedUnderCurrentKey, sealSecrets } from './source-store.ts';
import type { ExceptionsDb, InterfaceType } from './tables.ts';

/** The context with another MERCATO_SECRETS_KEY (undefined: the derived key) and no previous keys. */
const underKey = (ctx: AppContext, secretsKey: string | undefined): AppContext => ({
  ...ctx,
  config: { ...ctx.config, secretsKey, secretsPreviousKeys: [] },
});

/** Stores a tenant's source as a server run with `secretsKey` (undefined: unset) would have saved it. */
export async function storeSealedSource(
  ctx: AppContext,
  tenantId: string,
  interfaceType: InterfaceType,
  secrets: SourceSecrets,
  secretsKey: string | undefined,
): Promise<void> {
  const db = ctx.db.kysely as ExceptionsDb;
  const sealed = await sealSecrets(
    createSecretBox(underKey(ctx, secretsKey), db),
    tenantId,
    interfaceType,
    secrets,
  );
  await withTenant(db, tenantId, (trx) =>
    trx
      .insertInto('exceptions.sources')
      .values({
        tenant_id: tenantId,
        interface_type: interfaceType,
        base_url: 'http://127.0.0.1:9/source',
        timeout_ms: 1000,
        credentials_encrypted: sealed,
      })
      .execute(),
  );
}

/** A tenant's stored source opened under `secretsKey` alone: its secrets, and whether that key sealed it. */
export async function openStoredSource(
  ctx: AppContext,
  tenantId: string,
  interfaceType: InterfaceType,
  secretsKey: string,
): Promise<{ secrets: SourceSecrets; current: boolean }> {
  const db = ctx.db.kysely as ExceptionsDb;
  const row = await withTenant(db, tenantId, (trx) =>
    trx
      .selectFrom('exceptions.sources')
      .selectAll()
      .where('interface_type', '=', interfaceType)
      .executeTakeFirstOrThrow(),
  );
  const box = createSecretBox(underKey(ctx, secretsKey), db);
  return {
    secrets: await openSecrets(box, row),
    current: await sealedUnderCurrentKey(box, row),
  };
}
