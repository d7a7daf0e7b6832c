import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AppContext } from './context.ts';
import { configuredSecretsKey, deriveKey, signingKeyMaterial } from './server-keys.ts';

/** Thrown when a sealed secret cannot be opened: another key sealed it, or it was altered. */
export class SecretUnreadableError extends Error {
  override name = 'SecretUnreadableError';
}

/**
 * Seals and opens the secrets tenants store (an exception source's credentials and signing
 * secret, a WAL HTTP target's signing secret and credential headers) with AES-256-GCM. `aad` binds a sealed value to where it is stored (tenant, row), so a value copied
 * to another tenant's row does not open.
 */
export type SecretBox = {
  /** Loads the key; call it before a transaction that seals or opens (deriving it reads the database). */
  ready(): Promise<void>;
  seal(plaintext: string, aad: string): Promise<string>;
  /** Opens a value sealed under the current key or a previous one (MERCATO_SECRETS_KEY_PREVIOUS). */
  open(sealed: string, aad: string): Promise<string>;
  /** Whether a sealed value names the current key (else reseal-secrets seals it again). */
  isCurrent(sealed: string): Promise<boolean>;
};

const VERSION = 'v1';
const IV_BYTES = 12;
const INFO = 'mercato/secrets/v1';

/**
 * Without MERCATO_SECRETS_KEY: a key derived (HKDF-SHA256, info mercato/secrets/v1) from the
 * platform's signing-key material (signingKeyMaterial: the oldest access-token signing key kept in
 * the database, else MERCATO_JWT_PRIVATE_KEY), so every process of one database derives the same
 * key and nothing new has to be stored. The key is only as secret as the database's owner data:
 * production sets MERCATO_SECRETS_KEY.
 */
async function derivedKey<DB>(ctx: AppContext, db: Kysely<DB>): Promise<Buffer | undefined> {
  const material = await signingKeyMaterial(ctx, db);
  return material ? deriveKey(material, INFO) : undefined;
}

type Key = { key: Buffer; id: string };
/** A key and its id: 8 characters of its SHA-256, which every sealed value names. */
const keyOf = (key: Buffer): Key => ({
  key,
  id: createHash('sha256').update(key).digest('base64url').slice(0, 8),
});
type Keys = { current: Key; byId: Map<string, Key> };

/**
 * The current key (MERCATO_SECRETS_KEY, else derived) and every key a stored value may name: the
 * previous ones (MERCATO_SECRETS_KEY_PREVIOUS) and, once MERCATO_SECRETS_KEY is set, the derived
 * key, which sealed everything stored before it was.
 */
async function loadKeys<DB>(ctx: AppContext, db: Kysely<DB>): Promise<Keys> {
  const { secretsKey, secretsPreviousKeys } = ctx.config;
  const configured = secretsKey ? configuredSecretsKey(secretsKey) : undefined;
  const derived = await derivedKey(ctx, db);
  const key = configured ?? derived;
  if (!key) throw new Error('no key to derive the secrets key from: set MERCATO_SECRETS_KEY');
  const current = keyOf(key);
  const earlier = secretsPreviousKeys.map((raw) => keyOf(configuredSecretsKey(raw)));
  // Nothing can have been sealed under a derived key where there is none to derive.
  if (configured && derived) earlier.push(keyOf(derived));
  const byId = new Map<string, Key>();
  for (const key of [current, ...earlier]) if (!byId.has(key.id)) byId.set(key.id, key);
  return { current, byId };
}

/** A sealed value's parts, or SecretUnreadableError when it is not in this version's format. */
function partsOf(sealed: string): { keyId: string; iv: string; tag: string; body: string } {
  const [version, keyId, iv, tag, body] = sealed.split('.');
  if (
    version !== VERSION ||
    keyId === undefined ||
    iv === undefined ||
    tag === undefined ||
    body === undefined
  ) {
    throw new SecretUnreadableError('the stored secret is not in a format this version reads');
  }
  return { keyId, iv, tag, body };
}

/**
 * The process's SecretBox. The keys are loaded on first use and kept; sealed values name their
 * key's id, so one sealed under an unknown key is told apart from a forgery.
 */
export function createSecretBox<DB>(ctx: AppContext, db: Kysely<DB>): SecretBox {
  let keys: Promise<Keys> | undefined;
  const load = () => {
    keys ??= loadKeys(ctx, db).catch((error: unknown) => {
      keys = undefined;
      throw error;
    });
    return keys;
  };
  return {
    async ready() {
      await load();
    },
    async seal(plaintext, aad) {
      const { key: k, id } = (await load()).current;
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', k, iv);
      cipher.setAAD(Buffer.from(aad, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const parts = [iv, cipher.getAuthTag(), body].map((b) => b.toString('base64url'));
      return [VERSION, id, ...parts].join('.');
    },
    async open(sealed, aad) {
      const { byId } = await load();
      const { keyId, iv, tag, body } = partsOf(sealed);
      const key = byId.get(keyId);
      if (!key) {
        throw new SecretUnreadableError(
          'the stored secret was encrypted under another key (MERCATO_SECRETS_KEY changed? name the old key in MERCATO_SECRETS_KEY_PREVIOUS, or store it again)',
        );
      }
      try {
        const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(aad, 'utf8'));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString(
          'utf8',
        );
      } catch (error) {
        throw new SecretUnreadableError('the stored secret does not open: it was altered or moved', {
          cause: error,
        });
      }
    },
    async isCurrent(sealed) {
      return partsOf(sealed).keyId === (await load()).current.id;
    },
  };
}

const shared = new WeakMap<AppContext, SecretBox>();

/**
 * The context's SecretBox over its database (ctx.db.kysely), made on first use and shared by
 * every caller of the same context, so the keys are loaded once per process.
 */
export function secretBoxOf(ctx: AppContext): SecretBox {
  let box = shared.get(ctx);
  if (!box) {
    box = createSecretBox(ctx, ctx.db.kysely);
    shared.set(ctx, box);
  }
  return box;
}
