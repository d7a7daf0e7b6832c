import { type Kysely, sql, type Transaction } from 'kysely';
import { withSystem } from '../../platform/db/index.ts';
import { SYSTEM_TOPICS, type Topic } from '../../platform/events/index.ts';
import { AppError, validationFailed } from '../../platform/http/index.ts';
import type { BackendName, WalTables } from '../tables.ts';
import type { InternalTarget, Namespace } from './namespace.ts';
import type { NamespaceInput } from './validate.ts';

/**
 * System namespaces: the domain-event topics every tenant has (SYSTEM_TOPICS), created with the
 * tenant (the identity hook), for tenants that existed before by migration 0015, and inserted
 * again at every WAL start and on a publish that finds one missing, so none is ever absent.
 */

/** A domain event may carry a product with its 100 variants. */
export const SYSTEM_MAX_PAYLOAD_BYTES = 1_048_576;

/**
 * Deliveries in flight per system namespace (and process) unless the tenant sets less: module
 * subscribers (internal targets) run the deliveries that arrive together in one transaction, so
 * the events of a bulk import drain in batches of this size, not of the usual 8 (measured on
 * 10,000 imported products: 12 s instead of 44). Capped by MERCATO_WAL_MAX_CONCURRENCY.
 */
export const SYSTEM_CONSUMER_CONCURRENCY = 64;

export const isSystemTopic = (name: string): name is Topic =>
  (SYSTEM_TOPICS as readonly string[]).includes(name);

/**
 * The shortest time a system namespace keeps its dead letters: they hold Mercato's own deliveries
 * that failed every attempt (a checkout's watchdog with its saga id, whose requeue resumes a
 * stuck checkout holding a shopper's authorized payment), so a tenant may keep them longer, never
 * so briefly that the operator cannot act (migration 0049 raised those set lower before).
 */
export const SYSTEM_MIN_DEAD_RETENTION_SECONDS = 604_800;

/**
 * What a tenant admin may change on a system namespace: its own targets (webhooks are how a
 * tenant subscribes), how they are retried (they only: the modules' subscribers follow Mercato's
 * SYSTEM_RETRY_POLICY, delivery/backoff.ts), where HTTP targets may point, how many deliveries
 * run at once and how long delivered and dead messages are kept. Everything else belongs to
 * Mercato: a payload schema, a smaller size limit, a rate limit or `enabled: false` would make
 * a module's publish fail (and with it the change it announces), and the backend is the
 * operator's MERCATO_EVENTS_BACKEND.
 */
export const SYSTEM_TENANT_FIELDS = [
  'targets',
  'retry',
  'allowedHosts',
  'consumerConcurrency',
  'deliveredRetentionSeconds',
  'deadRetentionSeconds',
] as const;

/**
 * 409 SYSTEM_NAMESPACE when an update of a system namespace changes a field the tenant may not
 * (a field sent with its current value is accepted, so GET, edit, PUT works).
 */
export function checkSystemUpdate(namespace: Namespace, input: NamespaceInput & { name?: string }): void {
  if (!namespace.system) return;
  const dead = input.deadRetentionSeconds;
  if (typeof dead === 'number' && dead < SYSTEM_MIN_DEAD_RETENTION_SECONDS) {
    throw validationFailed([
      {
        in: 'body',
        pointer: '/deadRetentionSeconds',
        message: `must be at least ${SYSTEM_MIN_DEAD_RETENTION_SECONDS} (7 days) on a system namespace: its dead letters hold Mercato's own deliveries (a stuck checkout's watchdog) for an operator to requeue`,
      },
    ]);
  }
  const current = namespace as unknown as Record<string, unknown>;
  const refused = Object.entries(input)
    .filter(([, value]) => value !== undefined)
    .filter(([field]) => !(SYSTEM_TENANT_FIELDS as readonly string[]).includes(field))
    .filter(([field, value]) => JSON.stringify(value) !== JSON.stringify(current[field]))
    .map(([field]) => field);
  if (refused.length === 0) return;
  throw new AppError(
    'SYSTEM_NAMESPACE',
    `${namespace.name} is a system namespace: ${refused.join(', ')} cannot be changed (a tenant may change ${SYSTEM_TENANT_FIELDS.join(', ')})`,
    {
      errors: refused.map((field) => ({
        in: 'body',
        pointer: `/${field}`,
        message: 'cannot be changed on a system namespace',
      })),
    },
  );
}

const TOPICS = sql`unnest(${sql.val([...SYSTEM_TOPICS])}::text[])`;

/**
 * Inserts the tenant's missing system namespaces in `trx` (a transaction of that tenant, or the
 * system's), on `backend`; those present are left alone.
 */
export async function ensureSystemNamespaces(
  trx: Transaction<WalTables>,
  tenantId: string,
  backend: BackendName,
): Promise<void> {
  await sql`
    insert into wal.namespaces (tenant_id, name, system, backend, max_payload_bytes, consumer_concurrency)
    select ${tenantId}::uuid, topic, true, ${backend}, ${SYSTEM_MAX_PAYLOAD_BYTES}, ${SYSTEM_CONSUMER_CONCURRENCY}
    from ${TOPICS} as topic
    on conflict (tenant_id, name) do nothing`.execute(trx);
}

/**
 * At WAL start: every tenant's missing system namespaces, on `backend`; and system namespaces on
 * another backend (created before MERCATO_EVENTS_BACKEND changed, or by migration 0015) move to
 * it, the old one becoming their fallback so the messages it still holds are delivered.
 * Idempotent; several processes may run it at once.
 */
export async function ensureAllSystemNamespaces(db: Kysely<WalTables>, backend: BackendName): Promise<void> {
  await withSystem(db, async (trx) => {
    await sql`
      insert into wal.namespaces (tenant_id, name, system, backend, max_payload_bytes, consumer_concurrency)
      select t.id, topic, true, ${backend}, ${SYSTEM_MAX_PAYLOAD_BYTES}, ${SYSTEM_CONSUMER_CONCURRENCY}
      from identity.tenants t cross join ${TOPICS} as topic
      on conflict (tenant_id, name) do nothing`.execute(trx);
    await sql`
      update wal.namespaces set fallback_backend = backend, backend = ${backend}, updated_at = now()
      where system and backend <> ${backend}`.execute(trx);
  });
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The targets of an update of a system namespace without Mercato's own (`declared`): a target
 * sent back as GET showed it (`system: true`, unchanged) is dropped; one that would change,
 * replace or take the name of a declared target is 409 SYSTEM_NAMESPACE.
 */
export function withoutSystemTargets(
  namespace: Namespace,
  targets: unknown[] | undefined,
  declared: readonly InternalTarget[],
): unknown[] | undefined {
  if (!targets || !namespace.system || declared.length === 0) return targets;
  const byName = new Map(declared.map((t) => [t.name, t]));
  return targets.filter((target, i) => {
    if (!isObject(target) || typeof target['name'] !== 'string') return true;
    const own = byName.get(target['name']);
    if (!own) return true;
    const { circuit: _circuit, ...sent } = target;
    const unchanged =
      Object.keys(sent).every((key) => key in own) &&
      sent['type'] === 'internal' &&
      sent['system'] === true &&
      sent['handler'] === own.handler &&
      (sent['enabled'] ?? true) === own.enabled &&
      JSON.stringify(sent['types']) === JSON.stringify(own.types);
    if (unchanged) return false;
    throw new AppError(
      'SYSTEM_NAMESPACE',
      `target ${own.name} of ${namespace.name} belongs to Mercato (a module's subscription) and cannot be changed or replaced`,
      { errors: [{ in: 'body', pointer: `/targets/${i}`, message: 'is a system target' }] },
    );
  });
}

/**
 * The onTenantCreated hook of a process that creates tenants without running the WAL (the CLI,
 * the primary of a cluster): the new tenant's system namespaces, in its creation transaction.
 */
export function systemNamespacesHook(backend: BackendName) {
  // biome-ignore lint/suspicious/noExplicitAny: identity's transaction
  return (trx: Transaction<any>, tenantId: string) =>
    ensureSystemNamespaces(trx as Transaction<WalTables>, tenantId, backend);
}
