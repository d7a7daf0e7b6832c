import { isIP } from 'node:net';
import { AppError, validationFailed } from '../../platform/http/index.ts';
import type { BackendName } from '../tables.ts';
import { normalizeHost } from '../targets/ssrf-guard-ip.ts';
import { checkTarget, type Issues, isObject, issue } from './check-target.ts';
import {
  DEFAULT_RETRY_POLICY,
  type OpenNamespace,
  type OpenTarget,
  type RetryPolicy,
  SQL_NEEDS_POSTGRES,
} from './namespace.ts';
import { checkPayloadSchema } from './payload-schema.ts';

export const BACKENDS = [
  'postgres',
  'redis-streams',
  'nats-jetstream',
] as const satisfies readonly BackendName[];
/**
 * The settings of a namespace, before the database adds tenant and timestamps (and the backends
 * it is draining, which follow from its changes); nothing sealed.
 */
export type NamespaceSettings = Omit<
  OpenNamespace,
  'tenantId' | 'createdAt' | 'updatedAt' | 'drainingBackends'
>;

/** The fields a create or update may carry (already structurally checked by the route schema). */
export type NamespaceInput = {
  backend?: BackendName;
  fallbackBackend?: BackendName | null;
  payloadSchema?: object | null;
  retry?: Partial<RetryPolicy>;
  targets?: unknown[];
  rateLimitPerSecond?: number | null;
  maxDelayMs?: number;
  maxPayloadBytes?: number;
  deliveredRetentionSeconds?: number;
  deadRetentionSeconds?: number;
  allowedHosts?: string[];
  consumerConcurrency?: number;
  enabled?: boolean;
};

/** What the caller may configure beyond a tenant admin. */
export type Authority = {
  /** The operator (an admin of the platform tenant) may define `sql` targets; a tenant admin may not. */
  operator: boolean;
  /** The database kind (ctx.db.kind): on PGlite nobody may define `sql` targets. */
  database: 'postgres' | 'pglite';
};

/**
 * Only the operator defines SQL, and only on PostgreSQL: a tenant admin sending an `sql` target,
 * or anyone on embedded PGlite (one superuser session: a statement could take the superuser's
 * role), gets 403 TARGET_TYPE_FORBIDDEN, before anything else is checked or stored.
 */
function refuseForbiddenTargets(targets: unknown[] | undefined, authority: Authority): void {
  if (!targets) return;
  const at = targets.findIndex((target) => isObject(target) && target['type'] === 'sql');
  if (at < 0) return;
  const pointer = `/targets/${at}/type`;
  if (!authority.operator) {
    throw new AppError(
      'TARGET_TYPE_FORBIDDEN',
      'sql targets run SQL on the Mercato database and are for the operator (the platform tenant) only',
      { errors: [{ in: 'body', pointer, message: 'sql targets are for the operator only' }] },
    );
  }
  if (authority.database !== 'postgres') {
    throw new AppError('TARGET_TYPE_FORBIDDEN', SQL_NEEDS_POSTGRES, {
      errors: [{ in: 'body', pointer, message: 'sql targets need PostgreSQL (DATABASE_URL)' }],
    });
  }
}

/**
 * Applies input over current (the stored namespace, or the defaults on create) and checks the
 * result as a whole; throws VALIDATION_FAILED listing every failing field, or
 * TARGET_TYPE_FORBIDDEN when a tenant admin sends a target kind reserved to the operator, or anyone
 * sends an `sql` target on PGlite (the default authority: a tenant admin on PGlite).
 */
export function resolveSettings(
  current: NamespaceSettings,
  input: NamespaceInput,
  authority: Authority = { operator: false, database: 'pglite' },
): NamespaceSettings {
  refuseForbiddenTargets(input.targets, authority);
  const issues: Issues = [];
  const backend = input.backend ?? current.backend;
  const fallbackBackend =
    input.fallbackBackend !== undefined ? input.fallbackBackend : current.fallbackBackend;
  if (fallbackBackend !== null && fallbackBackend === backend) {
    issue(issues, '/fallbackBackend', 'must differ from backend');
  }
  const payloadSchema =
    input.payloadSchema !== undefined
      ? (input.payloadSchema as Record<string, unknown> | null)
      : current.payloadSchema;
  if (input.payloadSchema) {
    for (const problem of checkPayloadSchema(input.payloadSchema as Record<string, unknown>)) {
      issue(issues, problem.pointer, problem.message);
    }
  }
  const retry: RetryPolicy = { ...current.retry, ...input.retry };
  if (retry.maxDelayMs < retry.baseDelayMs)
    issue(issues, '/retry/maxDelayMs', 'must be at least baseDelayMs');
  const allowedHosts = input.allowedHosts ?? current.allowedHosts;
  const hostKeys = allowedHosts.map(normalizeHost);
  allowedHosts.forEach((host, i) => {
    if (/[[\]:]/.test(host) && !isIP(host.replace(/^\[(.*)\]$/, '$1'))) {
      issue(issues, `/allowedHosts/${i}`, 'must be a host name, an IPv4 address or an IPv6 address');
    } else if (hostKeys.indexOf(hostKeys[i]!) !== i) issue(issues, `/allowedHosts/${i}`, 'is listed twice');
  });
  let targets = current.targets;
  const checkTargets = input.targets !== undefined || input.allowedHosts !== undefined;
  if (checkTargets) {
    const stored = new Map(current.targets.map((target) => [target.name, target]));
    const raw: unknown[] = input.targets ?? current.targets;
    const seen = new Set<string>();
    const checked: OpenTarget[] = [];
    raw.forEach((item, i) => {
      const target = checkTarget(item, `/targets/${i}`, issues, stored, allowedHosts);
      const name = isObject(item) ? item['name'] : undefined;
      if (typeof name === 'string') {
        if (seen.has(name)) issue(issues, `/targets/${i}/name`, `target name ${name} is used twice`);
        seen.add(name);
      }
      if (target) checked.push(target);
    });
    targets = checked;
  }
  if (issues.length > 0) {
    throw validationFailed(issues);
  }
  return {
    name: current.name,
    backend,
    fallbackBackend,
    payloadSchema,
    retry,
    targets,
    rateLimitPerSecond:
      input.rateLimitPerSecond !== undefined ? input.rateLimitPerSecond : current.rateLimitPerSecond,
    maxDelayMs: input.maxDelayMs ?? current.maxDelayMs,
    maxPayloadBytes: input.maxPayloadBytes ?? current.maxPayloadBytes,
    deliveredRetentionSeconds: input.deliveredRetentionSeconds ?? current.deliveredRetentionSeconds,
    deadRetentionSeconds: input.deadRetentionSeconds ?? current.deadRetentionSeconds,
    allowedHosts,
    consumerConcurrency: input.consumerConcurrency ?? current.consumerConcurrency,
    enabled: input.enabled ?? current.enabled,
    system: current.system,
  };
}

/** The defaults of a new namespace (the same as migration 0007's column defaults). */
export function defaultSettings(name: string): NamespaceSettings {
  return {
    name,
    backend: 'postgres',
    fallbackBackend: null,
    payloadSchema: null,
    retry: { ...DEFAULT_RETRY_POLICY },
    targets: [],
    rateLimitPerSecond: null,
    maxDelayMs: 604_800_000,
    maxPayloadBytes: 262_144,
    deliveredRetentionSeconds: 604_800,
    deadRetentionSeconds: 2_592_000,
    allowedHosts: [],
    consumerConcurrency: 8,
    enabled: true,
    system: false,
  };
}
