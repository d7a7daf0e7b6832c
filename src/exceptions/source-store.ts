import type { Selectable } from 'kysely';
import { isoTime } from '../platform/db/iso-time.ts';
import { AppError } from '../platform/http/index.ts';
import { newSigningSecret, type SecretBox } from './secrets.ts';
import type { Credentials, SourceTarget } from './source-client.ts';
import type { ExceptionsTrx, InterfaceType, SourcesTable } from './tables.ts';

export type SourceRow = Selectable<SourcesTable>;

/** What a source keeps encrypted: the credentials Mercato signs in with and the retries' signing secret. */
export type SourceSecrets = { signingSecret: string; credentials: Credentials | null };

/** A source as the API shows it: never a credential nor the signing secret. */
export type SourceView = {
  interfaceType: InterfaceType;
  baseUrl: string;
  timeoutMs: number;
  hasCredentials: boolean;
  createdAt: string;
  updatedAt: string;
};

// credentials_encrypted is `<flag>:<sealed JSON of SourceSecrets>`: the flag (c: credentials, n:
// none) lets a view say hasCredentials without decrypting, and is bound to the ciphertext (AAD),
// as are the tenant and the interface type, so a value moved to another row does not open.
const aadOf = (tenantId: string, interfaceType: string, flag: string) =>
  `exceptions.sources|${tenantId}|${interfaceType}|${flag}`;

const flagOf = (row: SourceRow): string | undefined => row.credentials_encrypted?.slice(0, 1);

export function sourceView(row: SourceRow): SourceView {
  return {
    interfaceType: row.interface_type,
    baseUrl: row.base_url,
    timeoutMs: row.timeout_ms,
    hasCredentials: flagOf(row) === 'c',
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}

/** Encrypts a source's secrets for its row. */
export async function sealSecrets(
  box: SecretBox,
  tenantId: string,
  interfaceType: string,
  secrets: SourceSecrets,
): Promise<string> {
  const flag = secrets.credentials ? 'c' : 'n';
  return `${flag}:${await box.seal(JSON.stringify(secrets), aadOf(tenantId, interfaceType, flag))}`;
}

/** Decrypts a source's secrets (SecretUnreadableError when another key sealed them, or they were altered). */
export async function openSecrets(box: SecretBox, row: SourceRow): Promise<SourceSecrets> {
  const stored = row.credentials_encrypted;
  if (!stored) return { signingSecret: '', credentials: null };
  const flag = stored.slice(0, 1);
  const plain = await box.open(stored.slice(2), aadOf(row.tenant_id, row.interface_type, flag));
  return JSON.parse(plain) as SourceSecrets;
}

/** Whether a source's secrets are sealed under the box's current key (none stored: nothing to reseal). */
export async function sealedUnderCurrentKey(box: SecretBox, row: SourceRow): Promise<boolean> {
  const stored = row.credentials_encrypted;
  return stored ? box.isCurrent(stored.slice(2)) : true;
}

/** The source as a call needs it, credentials decrypted. */
export async function targetOf(box: SecretBox, row: SourceRow): Promise<SourceTarget & SourceSecrets> {
  const secrets = await openSecrets(box, row);
  return { baseUrl: row.base_url, timeoutMs: row.timeout_ms, ...secrets };
}

export async function getSource(
  trx: ExceptionsTrx,
  tenantId: string,
  interfaceType: string,
  options: { lock?: boolean } = {},
): Promise<SourceRow | undefined> {
  let query = trx
    .selectFrom('exceptions.sources')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('interface_type', '=', interfaceType as InterfaceType);
  if (options.lock) query = query.forUpdate();
  return query.executeTakeFirst();
}

export function listSources(trx: ExceptionsTrx, tenantId: string): Promise<SourceRow[]> {
  return trx
    .selectFrom('exceptions.sources')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('interface_type')
    .execute();
}

/** Whether a new base URL goes to another scheme, host or port than the stored one. */
const movesOrigin = (stored: string, next: string): boolean =>
  new URL(stored).origin !== new URL(next).origin;

// Stored credentials kept across a move would sign in to a host whoever saved the move chose:
// anyone with exceptions:write could read them there, though the API never shows them.
const MOVED = 'must be given again (or null) when baseUrl moves to another origin';
const credentialsAgain = () =>
  new AppError('VALIDATION_FAILED', `credentials ${MOVED}`, {
    errors: [{ in: 'body', pointer: '/credentials', message: MOVED }],
  });

/**
 * What a PUT of a source gives: credentials undefined keep the stored ones (400 when baseUrl
 * moves to another origin), null removes them.
 */
export type SourceInput = { baseUrl: string; timeoutMs: number; credentials: Credentials | null | undefined };

/** A source saved: its row, whether this save made it, and the signing secret to show (once) if it made one. */
export type SavedSource = { row: SourceRow; created: boolean; shown: string | undefined };

/**
 * Creates or replaces the tenant's source of one interface type, in trx. A replace keeps the
 * signing secret (and the credentials when `credentials` is undefined); one whose secrets no longer
 * open (sealed under another key) gets a new secret, shown. Two first saves at once both find no
 * row: the first to insert makes it (created, its secret shown), and the other, whose insert waits
 * for that one's commit and then does nothing, replaces what it made, keeping the secret shown.
 * A single upsert let the second overwrite the first's secret after the first had shown it.
 */
export async function saveSource(
  trx: ExceptionsTrx,
  box: SecretBox,
  tenantId: string,
  interfaceType: InterfaceType,
  input: SourceInput,
): Promise<SavedSource> {
  // Bounded: each round either finds the row or inserts it, unless a delete comes in between.
  for (let round = 0; round < 3; round += 1) {
    const existing = await getSource(trx, tenantId, interfaceType, { lock: true });
    if (existing) {
      // Secrets sealed under another key cannot be kept: the source gets a new signing secret.
      const kept = await openSecrets(box, existing).catch(() => undefined);
      const signingSecret = kept?.signingSecret || newSigningSecret();
      if (
        input.credentials === undefined &&
        kept?.credentials &&
        movesOrigin(existing.base_url, input.baseUrl)
      ) {
        throw credentialsAgain();
      }
      const credentials = input.credentials === undefined ? (kept?.credentials ?? null) : input.credentials;
      const sealed = await sealSecrets(box, tenantId, interfaceType, { signingSecret, credentials });
      const row = await trx
        .updateTable('exceptions.sources')
        .set({
          base_url: input.baseUrl,
          timeout_ms: input.timeoutMs,
          credentials_encrypted: sealed,
          updated_at: new Date(),
        })
        .where('tenant_id', '=', tenantId)
        .where('interface_type', '=', interfaceType)
        .returningAll()
        .executeTakeFirstOrThrow();
      return { row, created: false, shown: kept?.signingSecret ? undefined : signingSecret };
    }
    const signingSecret = newSigningSecret();
    const credentials = input.credentials ?? null;
    const sealed = await sealSecrets(box, tenantId, interfaceType, { signingSecret, credentials });
    const row = await trx
      .insertInto('exceptions.sources')
      .values({
        tenant_id: tenantId,
        interface_type: interfaceType,
        base_url: input.baseUrl,
        timeout_ms: input.timeoutMs,
        credentials_encrypted: sealed,
      })
      .onConflict((oc) => oc.columns(['tenant_id', 'interface_type']).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (row) return { row, created: true, shown: signingSecret };
    // Another save made it meanwhile (the insert waited for its commit): the next round replaces it.
  }
  throw new AppError('CONFLICT', `the ${interfaceType} source kept changing while it was saved; retry`);
}

/** Deletes the source; false when there was none. */
export async function deleteSource(
  trx: ExceptionsTrx,
  tenantId: string,
  interfaceType: string,
): Promise<boolean> {
  const result = await trx
    .deleteFrom('exceptions.sources')
    .where('tenant_id', '=', tenantId)
    .where('interface_type', '=', interfaceType as InterfaceType)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}
