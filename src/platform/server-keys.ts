import { hkdfSync } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { AppContext } from './context.ts';
import { withSystem } from './db/index.ts';

/** The operator's MERCATO_SECRETS_KEY as bytes (already checked by loadConfig: 32 bytes of hex or base64). */
export function configuredSecretsKey(raw: string): Buffer {
  return /^[0-9a-fA-F]{64}$/.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64');
}

/**
 * 32 bytes derived (HKDF-SHA256) from `material` for the purpose `info`: each purpose names its
 * own info, so no two purposes ever hold the same bytes.
 */
export const deriveKey = (material: string | Buffer, info: string): Buffer =>
  Buffer.from(hkdfSync('sha256', material, 'mercato-secrets', info, 32));

/**
 * What a deployment derives its keys from when MERCATO_SECRETS_KEY is unset: the private key of
 * the oldest access-token signing key the platform keeps in the database (platform.signing_keys,
 * readable by the owner role only; identity makes one on the first start and retires, never
 * deletes, old ones), so every process of one database reads the same and nothing new has to be
 * stored. Where identity signs with MERCATO_JWT_PRIVATE_KEY and the table is empty, that PEM is
 * the material instead; undefined when there is neither. Either way it is only as secret as the
 * database's owner data: production sets MERCATO_SECRETS_KEY.
 */
export async function signingKeyMaterial<DB>(ctx: AppContext, db: Kysely<DB>): Promise<string | undefined> {
  const { rows } = await withSystem(db, (trx) =>
    sql<{ private_pem: string }>`
      select private_pem from platform.signing_keys order by created_at, kid limit 1`.execute(trx),
  );
  return rows[0]?.private_pem ?? ctx.config.jwt.privateKey;
}

/**
 * The deployment's server-side key for `info` (HKDF-SHA256): from MERCATO_SECRETS_KEY when set,
 * else from the signing-key material (signingKeyMaterial), so every process of one deployment
 * derives the same bytes. Call it once identity has made its signing key (createIdentity does).
 */
export async function deriveServerKey<DB>(ctx: AppContext, db: Kysely<DB>, info: string): Promise<Buffer> {
  const { secretsKey } = ctx.config;
  const root = secretsKey ? configuredSecretsKey(secretsKey) : await signingKeyMaterial(ctx, db);
  if (!root) throw new Error(`no key to derive ${info} from: set MERCATO_SECRETS_KEY`);
  return deriveKey(root, info);
}
