import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import { AppError } from '../../platform/http/index.ts';
import type { SecretBox } from '../../platform/secrets.ts';
import { recordAudit } from '../audit/index.ts';
import type { NamespacesTable, WalTables } from '../tables.ts';
import { maskTargets } from './masks.ts';
import type { Namespace, OpenNamespace, Target } from './namespace.ts';
import { openTargets, sealTargets } from './sealed-targets.ts';
import { defaultSettings, type NamespaceInput, type NamespaceSettings, resolveSettings } from './validate.ts';

type Db = Kysely<WalTables> | Transaction<WalTables>;
type Row = Selectable<NamespacesTable>;

const json = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T;

/** A namespace as stored: its HTTP secrets and credential headers sealed (see openNamespace). */
export function toNamespace(row: Row): Namespace {
  return {
    tenantId: row.tenant_id,
    name: row.name,
    backend: row.backend,
    fallbackBackend: row.fallback_backend,
    drainingBackends: row.draining_backends ?? [],
    payloadSchema: json<Record<string, unknown> | null>(row.payload_schema),
    retry: {
      strategy: row.retry_strategy,
      baseDelayMs: Number(row.retry_base_delay_ms),
      maxDelayMs: Number(row.retry_max_delay_ms),
      maxAttempts: Number(row.max_attempts),
      jitter: Math.round(Number(row.retry_jitter) * 1e6) / 1e6,
    },
    targets: json<Target[]>(row.targets),
    rateLimitPerSecond: row.rate_limit_per_second === null ? null : Number(row.rate_limit_per_second),
    maxDelayMs: Number(row.max_delay_ms),
    maxPayloadBytes: Number(row.max_payload_bytes),
    deliveredRetentionSeconds: Number(row.delivered_retention_seconds),
    deadRetentionSeconds: Number(row.dead_retention_seconds),
    allowedHosts: row.allowed_hosts,
    consumerConcurrency: Number(row.consumer_concurrency),
    enabled: row.enabled,
    system: row.system === true,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

/**
 * The namespace with its HTTP targets' secrets and credential headers opened, for answers (masked),
 * updates and the audit log. One that does not open (another key sealed it) comes back empty: shown
 * masked, and an update must send it again. Call box.ready() before the transaction.
 */
export async function openNamespace(box: SecretBox, namespace: Namespace): Promise<OpenNamespace> {
  const place = { tenantId: namespace.tenantId, namespace: namespace.name };
  return { ...namespace, targets: await openTargets(box, place, namespace.targets, true) };
}

/** The columns of the settings, with `targets` as stored (sealTargets). */
function toColumns(settings: NamespaceSettings, targets: Target[]) {
  return {
    backend: settings.backend,
    fallback_backend: settings.fallbackBackend,
    payload_schema: settings.payloadSchema === null ? null : JSON.stringify(settings.payloadSchema),
    retry_strategy: settings.retry.strategy,
    retry_base_delay_ms: settings.retry.baseDelayMs,
    retry_max_delay_ms: settings.retry.maxDelayMs,
    max_attempts: settings.retry.maxAttempts,
    retry_jitter: settings.retry.jitter,
    targets: JSON.stringify(targets),
    rate_limit_per_second: settings.rateLimitPerSecond,
    max_delay_ms: settings.maxDelayMs,
    max_payload_bytes: settings.maxPayloadBytes,
    delivered_retention_seconds: settings.deliveredRetentionSeconds,
    dead_retention_seconds: settings.deadRetentionSeconds,
    allowed_hosts: settings.allowedHosts,
    consumer_concurrency: settings.consumerConcurrency,
    enabled: settings.enabled,
  };
}

function settingsOf(namespace: OpenNamespace): NamespaceSettings {
  const { tenantId: _t, createdAt: _c, updatedAt: _u, drainingBackends: _d, ...settings } = namespace;
  return settings;
}

/** What the audit log keeps of a namespace: everything but secrets and credential headers (masked). */
function auditable(settings: NamespaceSettings): Record<string, unknown> {
  return { ...settings, targets: maskTargets(settings.targets) };
}

export async function getNamespace(db: Db, tenantId: string, name: string): Promise<Namespace | undefined> {
  const row = await db
    .selectFrom('wal.namespaces')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('name', '=', name)
    .executeTakeFirst();
  return row ? toNamespace(row) : undefined;
}

/** One namespace of the tenant, or AppError NOT_FOUND. */
export async function requireNamespace(db: Db, tenantId: string, name: string): Promise<Namespace> {
  const namespace = await getNamespace(db, tenantId, name);
  if (!namespace) throw new AppError('NOT_FOUND', `namespace ${name} not found`);
  return namespace;
}

export async function listNamespaces(db: Db, tenantId: string): Promise<Namespace[]> {
  const rows = await db
    .selectFrom('wal.namespaces')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('name')
    .execute();
  return rows.map(toNamespace);
}

/**
 * Every enabled namespace of every tenant (system context only), but those of suspended tenants
 * (`paused`, migration 0013): the stream consumers serve this list, so their deliveries pause.
 */
export async function listEnabledNamespaces(db: Db): Promise<Namespace[]> {
  const rows = await db
    .selectFrom('wal.namespaces')
    .selectAll()
    .where('enabled', '=', true)
    .where(sql<boolean>`not paused`)
    .orderBy('tenant_id')
    .orderBy('name')
    .execute();
  return rows.map(toNamespace);
}

export type Change = {
  tenantId: string;
  actor: string;
  /** An admin of the platform tenant: may define `sql` targets (default: a tenant admin, who may not). */
  operator?: boolean;
  /** ctx.db.kind: sql targets are refused on PGlite, for everyone (default: pglite). */
  database?: 'postgres' | 'pglite';
};

const authorityOf = (change: Change) => ({
  operator: change.operator === true,
  database: change.database ?? 'pglite',
});

/**
 * Creates a namespace (AppError CONFLICT when the name is taken) and audits it. Its HTTP secrets
 * and credential headers are stored sealed by `box` (ready before the transaction).
 */
export async function createNamespace(
  trx: Transaction<WalTables>,
  change: Change,
  name: string,
  input: NamespaceInput,
  box: SecretBox,
): Promise<OpenNamespace> {
  const settings = resolveSettings(defaultSettings(name), input, authorityOf(change));
  const place = { tenantId: change.tenantId, namespace: name };
  const targets = await sealTargets(box, place, settings.targets);
  const row = await trx
    .insertInto('wal.namespaces')
    .values({ tenant_id: change.tenantId, name, ...toColumns(settings, targets) })
    .onConflict((oc) => oc.columns(['tenant_id', 'name']).doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!row) throw new AppError('CONFLICT', `namespace ${name} already exists`);
  await recordAudit(trx, {
    tenantId: change.tenantId,
    actor: change.actor,
    action: 'namespace.created',
    subject: `namespace:${name}`,
    details: { after: auditable(settings) },
  });
  return { ...toNamespace(row), targets: settings.targets };
}

/**
 * Applies a partial update (AppError NOT_FOUND) and audits the fields that changed. Every HTTP
 * secret and credential header is sealed again by `box` (one stored in clear by an older version
 * included), a masked one sent back keeping the stored value.
 */
export async function updateNamespace(
  trx: Transaction<WalTables>,
  change: Change,
  name: string,
  input: NamespaceInput,
  box: SecretBox,
): Promise<OpenNamespace> {
  const locked = await trx
    .selectFrom('wal.namespaces')
    .selectAll()
    .where('tenant_id', '=', change.tenantId)
    .where('name', '=', name)
    .forUpdate()
    .executeTakeFirst();
  if (!locked) throw new AppError('NOT_FOUND', `namespace ${name} not found`);
  const before = settingsOf(await openNamespace(box, toNamespace(locked)));
  const after = resolveSettings(before, input, authorityOf(change));
  const targets = await sealTargets(box, { tenantId: change.tenantId, namespace: name }, after.targets);
  const row = await trx
    .updateTable('wal.namespaces')
    .set({ ...toColumns(after, targets), updated_at: new Date() })
    .where('tenant_id', '=', change.tenantId)
    .where('name', '=', name)
    .returningAll()
    .executeTakeFirstOrThrow();
  const old = auditable(before);
  const now = auditable(after);
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const key of Object.keys(now)) {
    if (JSON.stringify(old[key]) !== JSON.stringify(now[key]))
      changes[key] = { from: old[key], to: now[key] };
  }
  // A rotated secret shows in the audit as a change of its masked form, never its value.
  await recordAudit(trx, {
    tenantId: change.tenantId,
    actor: change.actor,
    action: 'namespace.updated',
    subject: `namespace:${name}`,
    details: { changes },
  });
  return { ...toNamespace(row), targets: after.targets };
}

/** Deletes a namespace and, by cascade, its messages (AppError NOT_FOUND); audited (secrets masked). */
export async function deleteNamespace(
  trx: Transaction<WalTables>,
  change: Change,
  name: string,
  box: SecretBox,
): Promise<void> {
  const row = await trx
    .deleteFrom('wal.namespaces')
    .where('tenant_id', '=', change.tenantId)
    .where('name', '=', name)
    .returningAll()
    .executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', `namespace ${name} not found`);
  await recordAudit(trx, {
    tenantId: change.tenantId,
    actor: change.actor,
    action: 'namespace.deleted',
    subject: `namespace:${name}`,
    details: { before: auditable(settingsOf(await openNamespace(box, toNamespace(row)))) },
  });
}

/**
 * Marks one target of a namespace disabled (its endpoint answered 410 Gone); audited, and the
 * NOTIFY trigger makes every process drop its cached namespace. False if nothing changed.
 */
export async function disableTarget(
  trx: Transaction<WalTables>,
  change: Change,
  name: string,
  target: string,
  reason: string,
): Promise<boolean> {
  const result = await sql`
    update wal.namespaces set updated_at = now(), targets = (
      select jsonb_agg(case when t->>'name' = ${target} then jsonb_set(t, '{enabled}', 'false') else t end order by ord)
      from jsonb_array_elements(targets) with ordinality as x(t, ord)
    )
    where tenant_id = ${change.tenantId} and name = ${name}
      and exists (select 1 from jsonb_array_elements(targets) t
                  where t->>'name' = ${target} and coalesce((t->>'enabled')::boolean, true))`.execute(trx);
  if (Number(result.numAffectedRows ?? 0) === 0) return false;
  await recordAudit(trx, {
    tenantId: change.tenantId,
    actor: change.actor,
    action: 'namespace.target_disabled',
    subject: `namespace:${name}`,
    details: { target, reason },
  });
  return true;
}
