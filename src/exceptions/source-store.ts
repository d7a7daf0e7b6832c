import type { Selectable } from 'kysely';
import { isoTime } from '../platform/db/iso-time.ts';
import type { SecretBox } from './secrets.ts';
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

/** Creates or replaces the tenant's source of one interface type. */
export function putSource(
  trx: ExceptionsTrx,
  tenantId: string,
  interfaceType: InterfaceType,
  source: { baseUrl: string; timeoutMs: number; sealed: string },
): Promise<SourceRow> {
  return trx
    .insertInto('exceptions.sources')
    .values({
      tenant_id: tenantId,
      interface_type: interfaceType,
      base_url: source.baseUrl,
      timeout_ms: source.timeoutMs,
      credentials_encrypted: source.sealed,
    })
    .onConflict((oc) =>
      oc.columns(['tenant_id', 'interface_type']).doUpdateSet({
        base_url: source.baseUrl,
        timeout_ms: source.timeoutMs,
        credentials_encrypted: source.sealed,
        updated_at: new Date(),
      }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
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
