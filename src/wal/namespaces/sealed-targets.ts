import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { withSystem } from '../../platform/db/index.ts';
import { type SecretBox, SecretUnreadableError } from '../../platform/secrets.ts';
import type { WalTables } from '../tables.ts';
import type { HttpTarget, OpenHttpTarget, OpenTarget, Sealed, Target } from './namespace.ts';

/**
 * Header names that carry a credential (case-insensitive): Authorization, Cookie, X-Api-Key,
 * X-Auth-Token, X-Client-Secret, … Their values are stored sealed and answered masked.
 */
const SENSITIVE_HEADER = /auth|cookie|token|key|secret|passw|pwd|credential|session|signature/i;
export const isSensitiveHeader = (name: string): boolean => SENSITIVE_HEADER.test(name);

export const isSealed = (value: unknown): value is Sealed =>
  typeof value === 'object' && value !== null && typeof (value as Sealed).sealed === 'string';

/** Where a target is stored: a sealed value is bound to it (tenant, namespace, target, field). */
export type TargetPlace = { tenantId: string; namespace: string };
const aadOf = (place: TargetPlace, target: string, field: string) =>
  `wal.namespaces/${place.tenantId}/${place.namespace}/${target}/${field}`;

async function open(box: SecretBox, value: string | Sealed, aad: string, lenient: boolean): Promise<string> {
  if (!isSealed(value)) return value;
  try {
    return await box.open(value.sealed, aad);
  } catch (error) {
    if (lenient && error instanceof SecretUnreadableError) return '';
    throw error;
  }
}

/**
 * The target with its secret and header values opened (a value still in clear, from an old row,
 * as it is). `lenient`: a value that does not open (SecretUnreadableError) comes back empty
 * (answers show it masked; an update must send it again) instead of failing.
 */
export async function openHttpTarget(
  box: SecretBox,
  place: TargetPlace,
  target: HttpTarget,
  lenient = false,
): Promise<OpenHttpTarget> {
  const { headers: stored, ...rest } = target;
  const secret = await open(box, target.secret, aadOf(place, target.name, 'secret'), lenient);
  if (!stored) return { ...rest, secret };
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(stored)) {
    headers[name] = await open(box, value, aadOf(place, target.name, `headers/${name}`), lenient);
  }
  return { ...rest, secret, headers };
}

/** Every target opened (see openHttpTarget); SecretUnreadableError when one does not open. */
export async function openTargets(
  box: SecretBox,
  place: TargetPlace,
  targets: Target[],
  lenient = false,
): Promise<OpenTarget[]> {
  return Promise.all(
    targets.map((target) => (target.type === 'http' ? openHttpTarget(box, place, target, lenient) : target)),
  );
}

/** The targets as stored: each HTTP secret and credential header value sealed, the rest as they are. */
export async function sealTargets(
  box: SecretBox,
  place: TargetPlace,
  targets: OpenTarget[],
): Promise<Target[]> {
  return Promise.all(
    targets.map(async (target): Promise<Target> => {
      if (target.type !== 'http') return target;
      const secret = { sealed: await box.seal(target.secret, aadOf(place, target.name, 'secret')) };
      if (!target.headers) return { ...target, secret };
      const headers: Record<string, string | Sealed> = {};
      for (const [name, value] of Object.entries(target.headers)) {
        headers[name] = isSensitiveHeader(name)
          ? { sealed: await box.seal(value, aadOf(place, target.name, `headers/${name}`)) }
          : value;
      }
      return { ...target, secret, headers };
    }),
  );
}

/** Whether a target list holds a secret or credential header in clear, or sealed under an earlier key. */
async function needsSealing(box: SecretBox, targets: Target[]): Promise<boolean> {
  for (const target of targets) {
    if (target.type !== 'http') continue;
    const values: [string, string | Sealed][] = [
      ['secret', target.secret],
      ...Object.entries(target.headers ?? {}),
    ];
    for (const [name, value] of values) {
      if (isSealed(value)) {
        if (!(await box.isCurrent(value.sealed))) return true;
      } else if (name === 'secret' || isSensitiveHeader(name)) return true;
    }
  }
  return false;
}

/**
 * Opens each HTTP target once per stored version: the namespace cache keeps one Namespace (and
 * its target objects) until the row changes, so a delivery after the first reuses the opened
 * copy. A failure is not kept (the next delivery tries again).
 */
export function createTargetOpener(box: SecretBox) {
  const opened = new WeakMap<HttpTarget, Promise<OpenHttpTarget>>();
  return (place: TargetPlace, target: HttpTarget): Promise<OpenHttpTarget> => {
    let found = opened.get(target);
    if (!found) {
      found = openHttpTarget(box, place, target);
      opened.set(target, found);
      found.catch(() => opened.delete(target));
    }
    return found;
  };
}

/** What resealTargets did, in namespaces: sealed again, already current, unreadable. */
export type TargetsReseal = {
  resealed: number;
  current: number;
  /** A value sealed under a key neither current nor previous (or altered): the target must be sent again. */
  unreadable: { tenantId: string; namespace: string }[];
};

const targetsOf = (value: unknown): Target[] =>
  (typeof value === 'string' ? JSON.parse(value) : value) as Target[];

/**
 * Seals every namespace's HTTP secrets and credential headers under the current key: those a row
 * written before they were sealed holds in clear, and those sealed under an earlier key
 * (MERCATO_SECRETS_KEY_PREVIOUS, or the derived key). The WAL runs it at start; `mercato
 * exceptions reseal-secrets` too. Each namespace that needs it is locked (FOR UPDATE), read again
 * and rewritten in a transaction of its own, so a concurrent change or another process's run is
 * never overwritten; updated_at stays (no setting changed), the NOTIFY drops cached copies.
 */
export async function resealTargets(db: Kysely<WalTables>, box: SecretBox): Promise<TargetsReseal> {
  await box.ready();
  const result: TargetsReseal = { resealed: 0, current: 0, unreadable: [] };
  const rows = await withSystem(db, (trx) =>
    trx
      .selectFrom('wal.namespaces')
      .select(['tenant_id', 'name', 'targets'])
      .where(sql<boolean>`targets @> '[{"type":"http"}]'::jsonb`)
      .orderBy('tenant_id')
      .orderBy('name')
      .execute(),
  );
  for (const row of rows) {
    if (!(await needsSealing(box, targetsOf(row.targets)))) {
      result.current += 1;
      continue;
    }
    const place = { tenantId: row.tenant_id, namespace: row.name };
    try {
      const changed = await withSystem(db, async (trx) => {
        const locked = await trx
          .selectFrom('wal.namespaces')
          .select('targets')
          .where('tenant_id', '=', place.tenantId)
          .where('name', '=', place.namespace)
          .forUpdate()
          .executeTakeFirst();
        if (!locked || !(await needsSealing(box, targetsOf(locked.targets)))) return false;
        const sealed = await sealTargets(
          box,
          place,
          await openTargets(box, place, targetsOf(locked.targets)),
        );
        await trx
          .updateTable('wal.namespaces')
          .set({ targets: JSON.stringify(sealed) })
          .where('tenant_id', '=', place.tenantId)
          .where('name', '=', place.namespace)
          .execute();
        return true;
      });
      if (changed) result.resealed += 1;
      else result.current += 1;
    } catch (error) {
      if (!(error instanceof SecretUnreadableError)) throw error;
      result.unreadable.push(place);
    }
  }
  return result;
}
