import type { BackendName } from '../tables.ts';

export type RetryPolicy = {
  strategy: 'exponential' | 'linear' | 'fixed';
  baseDelayMs: number;
  maxDelayMs: number;
  maxAttempts: number;
  /** 0..1: the share of each delay drawn at random (0.2 → delay × [0.8, 1.2]). */
  jitter: number;
};

/**
 * A new namespace's retry policy (migration 0007's column defaults), and the one Mercato's own
 * deliveries on system namespaces always follow (delivery/backoff.ts): about 25 minutes of
 * exponential retries, 1 s doubling up to 5 min, 10 attempts.
 */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  strategy: 'exponential',
  baseDelayMs: 1000,
  maxDelayMs: 300_000,
  maxAttempts: 10,
  jitter: 0.2,
});

type TargetBase = {
  name: string;
  enabled: boolean;
  /**
   * Event type patterns (exact, `prefix.*` or `*`): a message whose type (messageType in
   * targets/cloud-event.ts) matches none is skipped for this target. Absent: every message.
   */
  types?: string[];
  /** Declared by a Mercato module (an EventBus subscriber), not stored: read-only for the tenant. */
  system?: boolean;
};

/**
 * A value stored encrypted (platform/secrets.ts, under MERCATO_SECRETS_KEY): opened only where it
 * is used (namespaces/sealed-targets.ts).
 */
export type Sealed = { sealed: string };

/**
 * POSTs a structured CloudEvent signed per Standard Webhooks with `secret` (whsec_…). As stored
 * and read, `secret` and the values of credential headers (isSensitiveHeader) are Sealed; a row
 * written before they were sealed holds them in clear until the WAL seals it again.
 */
export type HttpTarget = TargetBase & {
  type: 'http';
  url: string;
  secret: string | Sealed;
  timeoutMs: number;
  headers?: Record<string, string | Sealed>;
};

/** An HTTP target with its secret and header values opened (as sent, as delivered). */
export type OpenHttpTarget = Omit<HttpTarget, 'secret' | 'headers'> & {
  secret: string;
  headers?: Record<string, string>;
};

/** A target with nothing sealed: an HTTP one opened, any other as it is. */
export type OpenTarget = Exclude<Target, HttpTarget> | OpenHttpTarget;

/** Runs one parameterized statement on the Mercato database; params are JSON pointers into the message. */
export type SqlTarget = TargetBase & { type: 'sql'; statement: string; params: string[] };

/**
 * Why no sql target is accepted or run on embedded PGlite: its one session is the superuser's,
 * so a statement could `set_config('role', 'postgres', true)` and read anything.
 */
export const SQL_NEEDS_POSTGRES =
  'sql targets need PostgreSQL (DATABASE_URL): embedded PGlite runs every statement in a superuser session';

/** DEL keys or PUBLISH to a channel; `{/json/pointer}` placeholders are filled from the payload. */
export type RedisTarget = TargetBase & {
  type: 'redis';
  command: 'DEL' | 'PUBLISH';
  key: string;
  message?: string;
};

/** A handler a Mercato module registered under this name. */
export type InternalTarget = TargetBase & { type: 'internal'; handler: string };

export type Target = HttpTarget | SqlTarget | RedisTarget | InternalTarget;

/** A namespace as the rest of the WAL module sees it. */
export type Namespace = {
  tenantId: string;
  name: string;
  backend: BackendName;
  fallbackBackend: BackendName | null;
  /**
   * Stream backends the namespace named before (as its backend or fallback) and no longer
   * (migration 0056): they go on delivering what they hold for it, and take no new writes. One
   * leaves the list once it holds nothing more to deliver (backends/stream/prune.ts, migration 0057).
   */
  drainingBackends: BackendName[];
  payloadSchema: Record<string, unknown> | null;
  retry: RetryPolicy;
  targets: Target[];
  rateLimitPerSecond: number | null;
  maxDelayMs: number;
  maxPayloadBytes: number;
  deliveredRetentionSeconds: number;
  deadRetentionSeconds: number;
  allowedHosts: string[];
  consumerConcurrency: number;
  enabled: boolean;
  /** A system namespace (domain events, SYSTEM_TOPICS): the tenant may change only some settings. */
  system: boolean;
  createdAt: string;
  updatedAt: string;
};

/** A namespace with its HTTP targets' secrets and credential headers opened (sealed-targets.ts). */
export type OpenNamespace = Omit<Namespace, 'targets'> & { targets: OpenTarget[] };

/** Namespaces by (tenant, name), cached per process and dropped on every change (NOTIFY). */
export type NamespaceCache = {
  get(tenantId: string, name: string): Promise<Namespace | undefined>;
  /** The cached namespace, without reading the database: undefined when not cached. */
  peek(tenantId: string, name: string): Namespace | undefined;
  /** A mark to take before reading a namespace elsewhere (in a caller's transaction), for remember(). */
  mark(): number;
  /**
   * Caches a namespace read elsewhere (as stored, before system targets), unless a change was
   * heard since `mark` (the read may predate it).
   */
  remember(mark: number, tenantId: string, name: string, stored: Namespace): void;
  /** Every enabled namespace of every tenant (for the delivery engine, which serves them all). */
  all(): Promise<Namespace[]>;
  invalidate(tenantId: string, name: string): void;
  /** Calls `listener` after each change of any namespace; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
  start(): Promise<void>;
  stop(): Promise<void>;
};

/**
 * The backends that may hold the namespace's messages, each once: its backend, its fallback and
 * those it is draining. Consumers serve it on each, and its messages are looked up and deleted
 * on each.
 */
export function backendsHolding(namespace: Namespace): BackendName[] {
  return [...new Set([namespace.backend, namespace.fallbackBackend, ...namespace.drainingBackends])].filter(
    (backend): backend is BackendName => backend !== null,
  );
}
