import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { type CryptoKey, calculateJwkThumbprint, importJWK, importPKCS8, type JWK } from 'jose';
import { type Kysely, sql } from 'kysely';
import { ConfigError } from '../../platform/config/index.ts';
import type { AppContext } from '../../platform/context.ts';
import { withSystem } from '../../platform/db/index.ts';
import type { IdentityTables } from '../tables.ts';

export const ACCESS_TOKEN_ALG = 'EdDSA';

/** The key that signs new access tokens and every key that verifies them, all held in memory. */
export type SigningKeys = {
  signing: { kid: string; key: CryptoKey };
  /** Verification keys by kid. */
  verifying: Map<string, CryptoKey>;
  /** Public JWKs (with kid, alg, use) for /.well-known/jwks.json. */
  published: JWK[];
};

// Any constant: every process that may create the first key takes the same lock.
const FIRST_KEY_LOCK = 7_370_912_101;

type StoredKey = { kid: string; private_pem: string; public_jwk: Record<string, unknown> };

function publicJwkOf(privateKey: KeyObject): JWK {
  const { kty, crv, x } = createPublicKey(privateKey).export({ format: 'jwk' });
  return { kty, crv, x } as JWK;
}

async function fromStored(stored: StoredKey[]): Promise<SigningKeys> {
  const [newest] = stored;
  if (!newest) throw new Error('no signing key available');
  const verifying = new Map<string, CryptoKey>();
  const published: JWK[] = [];
  for (const row of stored) {
    const jwk = { ...(row.public_jwk as JWK), kid: row.kid, alg: ACCESS_TOKEN_ALG, use: 'sig' };
    verifying.set(row.kid, (await importJWK(jwk, ACCESS_TOKEN_ALG)) as CryptoKey);
    published.push(jwk);
  }
  return {
    signing: { kid: newest.kid, key: await importPKCS8(newest.private_pem, ACCESS_TOKEN_ALG) },
    verifying,
    published,
  };
}

/** Turns MERCATO_JWT_PRIVATE_KEY (PKCS#8 PEM, Ed25519) into the one signing key; kid is its JWK thumbprint. */
async function fromConfiguredPem(pem: string): Promise<SigningKeys> {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new ConfigError('MERCATO_JWT_PRIVATE_KEY must be a PKCS#8 PEM private key', { cause: error });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError(
      `MERCATO_JWT_PRIVATE_KEY must be an Ed25519 key, got ${privateKey.asymmetricKeyType}`,
    );
  }
  const publicJwk = publicJwkOf(privateKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return fromStored([{ kid, private_pem: privatePem, public_jwk: publicJwk as Record<string, unknown> }]);
}

async function readUnretired(db: Kysely<IdentityTables>): Promise<StoredKey[]> {
  return db
    .selectFrom('platform.signing_keys')
    .select(['kid', 'private_pem', 'public_jwk'])
    .where('retired_at', 'is', null)
    .orderBy('created_at', 'desc')
    .orderBy('kid', 'desc')
    .execute();
}

/**
 * The un-retired keys of platform.signing_keys, newest signing. On the very first start one is
 * generated; the transaction-scoped advisory lock makes processes starting together agree on it.
 */
async function fromDatabase(db: Kysely<IdentityTables>): Promise<SigningKeys> {
  const existing = await withSystem(db, readUnretired);
  if (existing.length > 0) return fromStored(existing);
  const stored = await withSystem(db, async (trx) => {
    await sql`select pg_advisory_xact_lock(${FIRST_KEY_LOCK})`.execute(trx);
    if ((await readUnretired(trx)).length === 0) {
      const { privateKey } = generateKeyPairSync('ed25519');
      const publicJwk = publicJwkOf(privateKey);
      await trx
        .insertInto('platform.signing_keys')
        .values({
          kid: await calculateJwkThumbprint(publicJwk),
          algorithm: ACCESS_TOKEN_ALG,
          private_pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
          public_jwk: JSON.stringify(publicJwk),
        })
        .onConflict((oc) => oc.column('kid').doNothing())
        .execute();
    }
    return readUnretired(trx);
  });
  return fromStored(stored);
}

/** Loads the access-token keys once per process: the configured PEM when given, else the database's. */
export async function loadSigningKeys(ctx: AppContext, db: Kysely<IdentityTables>): Promise<SigningKeys> {
  const pem = ctx.config.jwt.privateKey;
  return pem ? fromConfiguredPem(pem.replaceAll('\\n', '\n')) : fromDatabase(db);
}
