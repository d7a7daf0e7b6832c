import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError } from './config-error.ts';
import { trustedProxies } from './trusted-proxies.ts';

/** Every module Mercato can run in one process; MERCATO_MODULES picks a subset. */
export const MODULES = [
  'identity',
  'wal',
  'catalog',
  'inventory',
  'cart',
  'orders',
  'payments',
  'checkout',
  'flash-sales',
  'exceptions',
] as const;
export type ModuleName = (typeof MODULES)[number];

export type Config = {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  natsUrl: string | undefined;
  modules: ModuleName[];
  workers: number;
  logLevel: string;
  demo: boolean;
  demoPassword: string | undefined;
  bodyLimit: number;
  corsOrigins: string[] | '*';
  /** Reverse proxies whose X-Forwarded-For is believed (MERCATO_TRUSTED_PROXIES): IPs and CIDRs. */
  trustedProxies: string[];
  jwt: {
    issuer: string;
    audience: string;
    accessTtlSeconds: number;
    privateKey: string | undefined;
  };
  refreshTtlSeconds: number;
  rateLimit: {
    anonymousPerMinute: number;
    authenticatedPerMinute: number;
    loginPerIpPerMinute: number;
    loginFailuresPerAccount: number;
    loginLockSeconds: number;
  };
  purgeIntervalSeconds: number;
  dbPoolSize: number;
  profileCacheTtlSeconds: number;
  walLeaseSeconds: number;
  /** Whether this process delivers WAL messages (MERCATO_WAL_DELIVERY). */
  walDelivery: boolean;
  /** statement_timeout of every statement Mercato runs, in ms; idle_in_transaction_session_timeout is twice it. */
  dbStatementTimeoutMs: number;
  /** How long start-up retries an unreachable PostgreSQL before it gives up. */
  dbConnectTimeoutSeconds: number;
  /** Prefix of every Redis key and channel Mercato uses (MERCATO_REDIS_PREFIX). */
  redisPrefix: string;
  /** Operator-opened private destinations for WAL HTTP targets: hosts, IPs or CIDRs, each with an optional :port. */
  walPrivateTargets: string[];
  /** Upper bound of any namespace's consumerConcurrency. */
  walMaxConcurrency: number;
  /** Namespaces one tenant may have (the platform tenant is exempt). */
  walMaxNamespaces: number;
  /** Longest retention of delivered messages and dead letters any namespace gets (MERCATO_WAL_MAX_RETENTION_SECONDS). */
  walMaxRetentionSeconds: number;
  /**
   * How the WAL retries Mercato's own deliveries on system namespaces (the modules' subscribers,
   * such as the checkout's watchdog), exponentially with jitter 0.2; the tenant's policy never does.
   */
  walSystemRetry: { maxAttempts: number; baseDelayMs: number; maxDelayMs: number };
  /** Seconds after its rotation during which a reused refresh token gets a fresh pair instead of revoking. */
  refreshReuseGraceSeconds: number;
  /** Bearer token /metrics requires, when set. */
  metricsToken: string | undefined;
  /** The backend of the system namespaces created for new tenants (product-events, …). */
  eventsBackend: 'postgres' | 'redis-streams' | 'nats-jetstream';
  reservationTtlSeconds: number;
  cartTtlSeconds: number;
  /** How long a search answer is reused at most (0: never); a catalog change drops it at once. */
  searchCacheTtlSeconds: number;
  /** How long one checkout saga step may take before it times out and the saga compensates. */
  checkoutStepTimeoutMs: number;
  /** How long a checkout waits for a pending authorization, from its first attempt (MERCATO_CHECKOUT_PENDING_TIMEOUT_MS). */
  checkoutPendingTimeoutMs: number;
  /** How long POST /orders waits for its saga before answering 202 with a Location to poll. */
  checkoutInlineMs: number;
  /** Flash-sale admission attempts per second one customer may make (counted in each process). */
  flashCustomerRate: number;
  /** Flash-sale admission attempts per second from one IP (counted in each process). */
  flashIpRate: number;
  /** A flash-sale gate admission older than this without its order in PostgreSQL leaked (reconciliation gives it back). */
  flashLeakGraceMs: number;
  /** Whether the `test` payment provider takes payments (never in production). */
  testPayments: boolean;
  /** Latency the test payment provider adds to each call, in ms. */
  testPspLatencyMs: number;
  /** Test hook: the checkout saga pauses after this step (MERCATO_TEST_PAUSE_AFTER_STEP), so a test can kill the process there. */
  checkoutPauseAfterStep: string | undefined;
  /** The operator's 32-byte key (base64 or hex) that encrypts stored credentials (MERCATO_SECRETS_KEY); never logged. */
  secretsKey: string | undefined;
  /** Keys that sealed stored secrets before the current one (MERCATO_SECRETS_KEY_PREVIOUS): opened with, never sealed with. */
  secretsPreviousKeys: string[];
  /** Consecutive failures of one tenant's exception source that open its circuit breaker. */
  sourceBreakerFailures: number;
  /** How long an open source breaker refuses calls before one trial call may pass. */
  sourceBreakerHalfOpenMs: number;
};

/** One environment variable: its default and what it does. The README table is generated from this list. */
export type Setting = { name: string; default: string; doc: string };

export const SETTINGS: Setting[] = [
  { name: 'HOST', default: '127.0.0.1', doc: 'Address the HTTP server listens on.' },
  { name: 'PORT', default: '3000', doc: 'Port the HTTP server listens on (0 picks a free one).' },
  {
    name: 'MERCATO_DATA_DIR',
    default: '.mercato',
    doc: 'Directory of the embedded PGlite database; unused when DATABASE_URL is set.',
  },
  {
    name: 'DATABASE_URL',
    default: '(unset: embedded PGlite)',
    doc: 'PostgreSQL 15+ connection string, e.g. postgres://user@127.0.0.1:5432/mercato.',
  },
  {
    name: 'REDIS_URL',
    default: '(unset)',
    doc: 'Redis 7 URL; rate limits and login throttling are then shared by every process, and WAL namespaces may use the redis-streams backend.',
  },
  {
    name: 'NATS_URL',
    default: '(unset)',
    doc: 'NATS server with JetStream, e.g. nats://127.0.0.1:4222; WAL namespaces may then use the nats-jetstream backend.',
  },
  {
    name: 'MERCATO_MODULES',
    default: 'all',
    doc: `Comma-separated modules this process runs (${MODULES.join(', ')}) or \`all\`.`,
  },
  {
    name: 'MERCATO_WORKERS',
    default: '1 embedded, one per core with DATABASE_URL',
    doc: 'HTTP worker processes (node:cluster); embedded PGlite allows only 1.',
  },
  {
    name: 'LOG_LEVEL',
    default: 'info',
    doc: 'pino level: fatal, error, warn, info, debug, trace or silent.',
  },
  { name: 'MERCATO_DEMO', default: 'true', doc: 'Seed the demo tenant and users on first start.' },
  {
    name: 'MERCATO_DEMO_PASSWORD',
    default: '(generated, printed once)',
    doc: 'Password of the demo users (12 to 128 characters).',
  },
  {
    name: 'MERCATO_BODY_LIMIT',
    default: '1048576',
    doc: "Largest request body in bytes; larger answers 413. The WAL write routes take at least 17 MiB (a batch 32 MiB) whatever this says; each namespace's `maxPayloadBytes` bounds its messages.",
  },
  {
    name: 'MERCATO_CORS_ORIGINS',
    default: '*',
    doc: 'Comma-separated origins allowed by CORS (`scheme://host[:port]`, as a browser sends them), `*` for any, empty for none.',
  },
  {
    name: 'MERCATO_TRUSTED_PROXIES',
    default: '(empty)',
    doc: "Comma-separated IPs or CIDRs of the reverse proxies in front of Mercato (e.g. `10.0.0.0/8`); a request from one of them is taken to come from the address its `X-Forwarded-For` names, so per-address rate limits, login throttles and flash-sale limits count shoppers, not the proxy. Empty: the socket's address, and `X-Forwarded-For` is ignored (anyone could write it).",
  },
  {
    name: 'MERCATO_JWT_ISSUER',
    default: 'mercato',
    doc: '`iss` of access tokens, checked on every request.',
  },
  {
    name: 'MERCATO_JWT_AUDIENCE',
    default: 'mercato-api',
    doc: '`aud` of access tokens, checked on every request.',
  },
  { name: 'MERCATO_ACCESS_TOKEN_TTL', default: '900', doc: 'Access token lifetime in seconds.' },
  {
    name: 'MERCATO_REFRESH_TOKEN_TTL',
    default: '2592000',
    doc: 'Refresh token lifetime in seconds (30 days).',
  },
  {
    name: 'MERCATO_JWT_PRIVATE_KEY',
    default: '(generated on first start, kept in the database)',
    doc: 'Ed25519 private key as PKCS#8 PEM; its public half is published at /.well-known/jwks.json.',
  },
  {
    name: 'MERCATO_RATE_LIMIT_ANONYMOUS',
    default: '300',
    doc: 'Requests per minute per IP on routes called without a credential.',
  },
  {
    name: 'MERCATO_RATE_LIMIT_AUTHENTICATED',
    default: '1200',
    doc: 'Requests per minute per user or API key.',
  },
  {
    name: 'MERCATO_LOGIN_RATE_LIMIT',
    default: '30',
    doc: 'Login attempts per minute per IP; registrations, password changes and staff accounts created each have a budget of the same size, counted apart (each costs an argon2 hash; 429 `RATE_LIMITED` past it).',
  },
  {
    name: 'MERCATO_LOGIN_MAX_FAILURES',
    default: '5',
    doc: 'Failed logins per account and IP before that IP is throttled for MERCATO_LOGIN_LOCK_SECONDS; ten times as many from all IPs throttle the account, except for IPs that signed in to it before.',
  },
  {
    name: 'MERCATO_LOGIN_LOCK_SECONDS',
    default: '900',
    doc: 'How long an account (from one IP, or from all) stays throttled.',
  },
  {
    name: 'MERCATO_PURGE_INTERVAL',
    default: '3600',
    doc: 'Seconds between purges of expired and revoked refresh tokens.',
  },
  { name: 'MERCATO_DB_POOL_SIZE', default: '20', doc: 'PostgreSQL connections per process.' },
  {
    name: 'MERCATO_PROFILE_CACHE_TTL',
    default: '30',
    doc: 'Seconds a profile read stays cached per process (dropped at once when the user changes); 0 disables.',
  },
  {
    name: 'MERCATO_WAL_LEASE_SECONDS',
    default: '30',
    doc: 'How long a WAL consumer holds a message it is delivering before another process may take it over.',
  },
  {
    name: 'MERCATO_WAL_DELIVERY',
    default: 'true',
    doc: 'Whether this process delivers WAL messages (consumers of every backend and the outbox relay); `false` makes a process that only takes writes, for running writers and deliverers apart.',
  },
  {
    name: 'MERCATO_WAL_MAX_CONCURRENCY',
    default: '64',
    doc: "Upper bound of any namespace's `consumerConcurrency` (deliveries in flight per namespace and process).",
  },
  {
    name: 'MERCATO_WAL_MAX_NAMESPACES',
    default: '100',
    doc: 'WAL namespaces one tenant may have; creating one more answers 409 `NAMESPACE_LIMIT_REACHED`. The platform tenant is exempt.',
  },
  {
    name: 'MERCATO_WAL_MAX_RETENTION_SECONDS',
    default: '31536000',
    doc: "Longest a WAL namespace keeps its delivered messages and dead letters (365 days; 604800 (7 days) to 315360000 (10 years)): a `deliveredRetentionSeconds` or `deadRetentionSeconds` above it answers 400 `VALIDATION_FAILED`, and every backend's retention holds a namespace stored with more (before the cap, or before it was lowered) to this instead; the API still shows the stored value.",
  },
  {
    name: 'MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS',
    default: '10',
    doc: "Attempts in all of Mercato's own deliveries on system namespaces (the modules' subscribers, such as the checkout's watchdog) before the message goes to the dead letters (1 to 1000). A tenant's `retry` on those namespaces governs only its own targets.",
  },
  {
    name: 'MERCATO_WAL_SYSTEM_RETRY_BASE_MS',
    default: '1000',
    doc: "Delay before the first retry of Mercato's own deliveries, doubled for each next one up to MERCATO_WAL_SYSTEM_RETRY_MAX_MS, jittered by ±20% (1 ms to 1 day, not above MERCATO_WAL_SYSTEM_RETRY_MAX_MS).",
  },
  {
    name: 'MERCATO_WAL_SYSTEM_RETRY_MAX_MS',
    default: '300000',
    doc: "Longest delay between two attempts of Mercato's own deliveries (1 ms to 1 day). The defaults retry for about 25 minutes; raise the attempts to ride out a longer outage, e.g. of a payment provider.",
  },
  {
    name: 'MERCATO_WAL_PRIVATE_TARGETS',
    default: '(empty)',
    doc: 'Comma-separated hosts, IPs or CIDRs, each with an optional `:port`, that WAL HTTP targets may reach although they are loopback, private or link-local (e.g. `127.0.0.1:9000,10.0.0.0/8`). Operator only: a tenant can never open them.',
  },
  {
    name: 'MERCATO_REDIS_PREFIX',
    default: 'mercato:',
    doc: "Prefix of every Redis key and channel Mercato uses, so deployments can share a Redis; a tenant's redis-target keys go under `<prefix>t:<tenantId>:`.",
  },
  {
    name: 'MERCATO_DB_STATEMENT_TIMEOUT_MS',
    default: '5000',
    doc: 'statement_timeout of every statement Mercato runs for a request, a target or a delivery; idle_in_transaction_session_timeout is twice it.',
  },
  {
    name: 'MERCATO_DB_CONNECT_TIMEOUT_SECONDS',
    default: '30',
    doc: 'How long start-up retries an unreachable PostgreSQL (with backoff, one log line per attempt) before it exits.',
  },
  {
    name: 'MERCATO_REFRESH_REUSE_GRACE_SECONDS',
    default: '10',
    doc: 'A refresh token reused this soon after its rotation (concurrent tabs) gets a fresh pair; later reuse revokes the whole session.',
  },
  {
    name: 'MERCATO_EVENTS_BACKEND',
    default: 'postgres',
    doc: "WAL backend of every tenant's system namespaces (`product-events`, `inventory-events`, …): postgres, redis-streams or nats-jetstream. At start, system namespaces on another backend move to this one (the old one becomes their fallback); use one value per database.",
  },
  {
    name: 'MERCATO_RESERVATION_TTL_SECONDS',
    default: '900',
    doc: 'How long an inventory reservation holds stock unless extended, committed or released; then it expires and the stock returns.',
  },
  {
    name: 'MERCATO_CART_TTL_SECONDS',
    default: '604800',
    doc: 'Carts untouched this long (7 days) are purged.',
  },
  {
    name: 'MERCATO_SEARCH_CACHE_TTL_SECONDS',
    default: '60',
    doc: "How long each process reuses a product search, suggest or facet answer at most (the same query of the same shop; 0 turns the cache off). Any change to the shop's products, stock flags or categories drops its answers at once on every process.",
  },
  {
    name: 'MERCATO_CHECKOUT_STEP_TIMEOUT_MS',
    default: '10000',
    doc: 'How long one checkout saga step (reserve, authorize, confirm) may take; past it the step times out and the saga compensates (void, release stock, order failed with reason timeout).',
  },
  {
    name: 'MERCATO_CHECKOUT_PENDING_TIMEOUT_MS',
    default: '600000',
    doc: "How long a checkout waits for an authorization the provider answered pending (3-D Secure, a bank redirect: settled by the provider's webhook), from the authorization's first attempt, before it times out and compensates (1 s to 1 day; at most MERCATO_RESERVATION_TTL_SECONDS, whose reservation holds the stock meanwhile). Meanwhile the provider is asked again in case its webhook was lost: first after MERCATO_CHECKOUT_STEP_TIMEOUT_MS and a second, then twice as far apart each time, up to 5 minutes.",
  },
  {
    name: 'MERCATO_FLASH_CUSTOMER_RATE',
    default: '5',
    doc: 'Flash-sale admission attempts per second one customer may make; more answer 429 with Retry-After. Counted in each process.',
  },
  {
    name: 'MERCATO_FLASH_IP_RATE',
    default: '2000',
    doc: 'Flash-sale admission attempts per second from one IP address (a NAT holds many shoppers); more answer 429. Counted in each process.',
  },
  {
    name: 'MERCATO_FLASH_LEAK_GRACE_MS',
    default: '30000',
    doc: "How old a flash-sale gate admission without its order in PostgreSQL must be before reconciliation calls it leaked (its process died between the gate and the commit) and gives its units back. Keep it well above an admission commit's time.",
  },
  {
    name: 'MERCATO_CHECKOUT_INLINE_MS',
    default: '2000',
    doc: '`POST /api/v1/orders` answers when its saga ends within this time (201 with the completed order, or the problem of a failed or cancelled one), else 202 with a Location to poll while it finishes in the background.',
  },
  {
    name: 'MERCATO_TEST_PAYMENTS',
    default: '(true; false when NODE_ENV=production)',
    doc: 'Whether the `test` payment provider takes payments. It charges nothing real: turn it off in production.',
  },
  {
    name: 'NODE_ENV',
    default: '(unset)',
    doc: '`production` turns the test payment provider off unless MERCATO_TEST_PAYMENTS says otherwise.',
  },
  {
    name: 'MERCATO_TEST_PSP_LATENCY_MS',
    default: '0',
    doc: 'Latency the test payment provider adds to each authorize, capture, void and refund.',
  },
  {
    name: 'MERCATO_TEST_PAUSE_AFTER_STEP',
    default: '(unset)',
    doc: 'Test hook: the checkout saga stops after this step (`validate`, `reserve`, `authorize`, `confirm`) and leaves the rest to its watchdog, so a crash test can kill the process there.',
  },
  {
    name: 'MERCATO_METRICS_TOKEN',
    default: '(unset: /metrics is open)',
    doc: '`/metrics` then requires `Authorization: Bearer <token>`.',
  },
  {
    name: 'MERCATO_SECRETS_KEY',
    default: '(unset: derived from the oldest access-token signing key)',
    doc: "32 random bytes as base64 or hex (`openssl rand -base64 32`) that encrypt credentials tenants store (AES-256-GCM): the exception collector's sources, and the WAL's HTTP target signing secrets and credential headers (sealed again at each start). A key derived from it (HKDF, a label of its own) also names the sign-in throttle's counters (HMAC-SHA256 of tenant, email and IP), so Redis holds no hash an email and IP can be tested against; changing it restarts those counts. Unset, a key is derived (HKDF) from the oldest signing key kept in the database, or from MERCATO_JWT_PRIVATE_KEY: set it in production and keep it: to change it, name the old one in MERCATO_SECRETS_KEY_PREVIOUS and run `mercato exceptions reseal-secrets`.",
  },
  {
    name: 'MERCATO_SECRETS_KEY_PREVIOUS',
    default: '(unset)',
    doc: 'Earlier values of MERCATO_SECRETS_KEY, comma-separated, while the key is rotated: what they sealed still opens (the key derived from the database is tried too once MERCATO_SECRETS_KEY is set), and `mercato exceptions reseal-secrets` seals it again under the current key (the WAL targets also at each start); then drop them.',
  },
  {
    name: 'MERCATO_SOURCE_BREAKER_FAILURES',
    default: '5',
    doc: "Consecutive failures (network error, timeout, 5xx, 429) of one tenant's exception source, per interface type, that open its circuit breaker in a process.",
  },
  {
    name: 'MERCATO_SOURCE_BREAKER_HALF_OPEN_MS',
    default: '30000',
    doc: 'How long an open exception-source breaker refuses calls (retries answer 503 `SOURCE_UNAVAILABLE` with Retry-After) before one trial call may pass.',
  },
];

/** A configuration value that cannot be used; the message names the variable and what it expects. */
export { ConfigError };

type Env = Record<string, string | undefined>;

function read(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return Number(raw);
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['true', '1', 'yes', 'on'].includes(raw)) return true;
  if (['false', '0', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a URL (${protocols.join(' or ')}), got "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must start with ${protocols.join(' or ')}, got "${parsed.protocol}"`);
  }
  return raw;
}

/** Whether a secrets key holds 32 bytes of hex or base64. */
function isSecretsKey(raw: string): boolean {
  const hex = /^[0-9a-fA-F]{64}$/.test(raw);
  return hex || (/^[A-Za-z0-9+/_-]{43}=?$/.test(raw) && Buffer.from(raw, 'base64').length === 32);
}

/** MERCATO_SECRETS_KEY as given, once it is known to hold 32 bytes of base64 or hex. */
function secretsKey(env: Env): string | undefined {
  const raw = read(env, 'MERCATO_SECRETS_KEY');
  if (raw === undefined) return undefined;
  // The value itself is never repeated in the message: it is a secret.
  if (!isSecretsKey(raw)) throw new ConfigError('MERCATO_SECRETS_KEY must be 32 bytes as base64 or as hex');
  return raw;
}

/** MERCATO_SECRETS_KEY_PREVIOUS: comma-separated keys, each as MERCATO_SECRETS_KEY takes one. */
function secretsPreviousKeys(env: Env): string[] {
  const raw = read(env, 'MERCATO_SECRETS_KEY_PREVIOUS');
  if (raw === undefined) return [];
  const keys = raw.split(',').map((k) => k.trim());
  const bad = keys.findIndex((k) => !isSecretsKey(k));
  if (bad >= 0) {
    throw new ConfigError(
      `MERCATO_SECRETS_KEY_PREVIOUS: key ${bad + 1} of ${keys.length} must be 32 bytes as base64 or as hex`,
    );
  }
  return keys;
}

function eventsBackend(env: Env): Config['eventsBackend'] {
  const raw = read(env, 'MERCATO_EVENTS_BACKEND') ?? 'postgres';
  if (raw === 'postgres' || raw === 'redis-streams' || raw === 'nats-jetstream') return raw;
  throw new ConfigError(
    `MERCATO_EVENTS_BACKEND must be postgres, redis-streams or nats-jetstream, got "${raw}"`,
  );
}

function modules(env: Env): ModuleName[] {
  const raw = read(env, 'MERCATO_MODULES');
  if (raw === undefined || raw === 'all') return [...MODULES];
  const names = raw.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!(MODULES as readonly string[]).includes(name)) {
      throw new ConfigError(
        `MERCATO_MODULES must list modules from ${MODULES.join(', ')} or be "all", got "${name}"`,
      );
    }
  }
  return names as ModuleName[];
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** A DNS name: dot-separated labels of letters, digits, `-` and `_`. */
const HOST_NAME = /^(?!-)[A-Za-z0-9_-]{1,63}(?:\.(?!-)[A-Za-z0-9_-]{1,63})*\.?$/;

/** HOST: an IP address or a host name. A URL or host:port would fail only at listen, with a stack. */
function host(env: Env): string {
  if (env['HOST'] === undefined) return '127.0.0.1';
  const raw = read(env, 'HOST') ?? '';
  if (raw === '') throw new ConfigError('HOST must be an address to listen on, got an empty value');
  if (isIP(raw) === 0 && !HOST_NAME.test(raw)) {
    throw new ConfigError(
      `HOST must be an IP address or a host name to listen on (no scheme, port or brackets), got "${raw}"`,
    );
  }
  return raw;
}

/**
 * MERCATO_CORS_ORIGINS: `*`, or origins as a browser sends them in `Origin` (compared exactly by
 * @fastify/cors). An entry without a scheme, with a path or with a `*` among others would never
 * match; a trailing slash, upper case or a default port is written the way the browser writes it.
 */
function corsOrigins(env: Env): string[] | '*' {
  if (env['MERCATO_CORS_ORIGINS'] === undefined) return '*';
  const raw = read(env, 'MERCATO_CORS_ORIGINS');
  if (raw === '*') return '*';
  const entries = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return entries.map((entry) => {
    let parsed: URL | undefined;
    try {
      parsed = new URL(entry);
    } catch {
      parsed = undefined;
    }
    const plain =
      parsed !== undefined &&
      parsed.origin !== 'null' &&
      parsed.username === '' &&
      parsed.password === '' &&
      parsed.pathname === '/' &&
      !entry.includes('?') &&
      !entry.includes('#');
    if (!plain) {
      throw new ConfigError(
        `MERCATO_CORS_ORIGINS must list origins as scheme://host[:port] (e.g. https://shop.example), or be * alone, got "${entry}"`,
      );
    }
    return parsed!.origin;
  });
}

/** The checkout saga's steps, which MERCATO_TEST_PAUSE_AFTER_STEP may name (src/checkout/steps.ts). */
const SAGA_STEPS = ['validate', 'reserve', 'authorize', 'confirm'];

function pauseAfterStep(env: Env): string | undefined {
  const raw = read(env, 'MERCATO_TEST_PAUSE_AFTER_STEP');
  if (raw !== undefined && !SAGA_STEPS.includes(raw)) {
    throw new ConfigError(
      `MERCATO_TEST_PAUSE_AFTER_STEP must be one of ${SAGA_STEPS.join(', ')}, got "${raw}"`,
    );
  }
  return raw;
}

/** MERCATO_METRICS_TOKEN: one Bearer credential, so printable ASCII without spaces (else no scrape could match). */
function metricsToken(env: Env): string | undefined {
  const raw = read(env, 'MERCATO_METRICS_TOKEN');
  // The value itself is never repeated in the message: it is a secret.
  if (raw !== undefined && !/^[\x21-\x7e]+$/.test(raw)) {
    throw new ConfigError(
      'MERCATO_METRICS_TOKEN must be printable ASCII without spaces (e.g. openssl rand -hex 32): a scraper sends it as Authorization: Bearer <token>',
    );
  }
  return raw;
}

/** The MERCATO_WAL_SYSTEM_RETRY_* settings: attempts 1..1000, delays 1 ms..1 day, base at most max. */
function walSystemRetry(env: Env): Config['walSystemRetry'] {
  const maxAttempts = integer(env, 'MERCATO_WAL_SYSTEM_RETRY_MAX_ATTEMPTS', 10, 1, 1000);
  const baseDelayMs = integer(env, 'MERCATO_WAL_SYSTEM_RETRY_BASE_MS', 1000, 1, 86_400_000);
  const maxDelayMs = integer(env, 'MERCATO_WAL_SYSTEM_RETRY_MAX_MS', 300_000, 1, 86_400_000);
  if (baseDelayMs > maxDelayMs) {
    throw new ConfigError(
      `MERCATO_WAL_SYSTEM_RETRY_BASE_MS must be at most MERCATO_WAL_SYSTEM_RETRY_MAX_MS (${maxDelayMs}), got "${baseDelayMs}"`,
    );
  }
  return { maxAttempts, baseDelayMs, maxDelayMs };
}

/** Reads and validates the whole configuration; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const logLevel = read(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  const demoPassword = read(env, 'MERCATO_DEMO_PASSWORD');
  // The password rules of identity (passwords.ts): 12 to 128 characters, counted as code points.
  // A longer one would be seeded, and then refused by login (at most 128).
  const demoPasswordLength = demoPassword === undefined ? 0 : [...demoPassword].length;
  if (demoPassword !== undefined && demoPasswordLength < 12) {
    throw new ConfigError('MERCATO_DEMO_PASSWORD must be at least 12 characters');
  }
  if (demoPasswordLength > 128) {
    throw new ConfigError('MERCATO_DEMO_PASSWORD must be at most 128 characters');
  }
  const workers = integer(env, 'MERCATO_WORKERS', databaseUrl ? availableParallelism() : 1, 1, 256);
  if (!databaseUrl && workers > 1) {
    throw new ConfigError('MERCATO_WORKERS must be 1 without DATABASE_URL: embedded PGlite is one process');
  }
  const redisPrefix =
    env['MERCATO_REDIS_PREFIX'] === undefined ? 'mercato:' : (read(env, 'MERCATO_REDIS_PREFIX') ?? '');
  // Redis Cluster hashes the first {…} of a key: a brace in the prefix would replace the hash tags
  // that keep each WAL namespace's keys in one slot.
  if (/[{}]/.test(redisPrefix)) {
    throw new ConfigError(`MERCATO_REDIS_PREFIX must not contain { or }, got "${redisPrefix}"`);
  }
  return {
    host: host(env),
    port: integer(env, 'PORT', 3000, 0, 65535),
    dataDir: resolve(read(env, 'MERCATO_DATA_DIR') ?? '.mercato'),
    databaseUrl,
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    natsUrl: url(env, 'NATS_URL', ['nats:', 'tls:']),
    modules: modules(env),
    workers,
    logLevel,
    demo: boolean(env, 'MERCATO_DEMO', true),
    demoPassword,
    bodyLimit: integer(env, 'MERCATO_BODY_LIMIT', 1024 * 1024, 1024, 1024 * 1024 * 1024),
    corsOrigins: corsOrigins(env),
    trustedProxies: trustedProxies(read(env, 'MERCATO_TRUSTED_PROXIES')),
    jwt: {
      issuer: read(env, 'MERCATO_JWT_ISSUER') ?? 'mercato',
      audience: read(env, 'MERCATO_JWT_AUDIENCE') ?? 'mercato-api',
      accessTtlSeconds: integer(env, 'MERCATO_ACCESS_TOKEN_TTL', 900, 30, 86_400),
      privateKey: read(env, 'MERCATO_JWT_PRIVATE_KEY'),
    },
    refreshTtlSeconds: integer(env, 'MERCATO_REFRESH_TOKEN_TTL', 30 * 86_400, 60, 365 * 86_400),
    rateLimit: {
      anonymousPerMinute: integer(env, 'MERCATO_RATE_LIMIT_ANONYMOUS', 300, 1, 100_000_000),
      authenticatedPerMinute: integer(env, 'MERCATO_RATE_LIMIT_AUTHENTICATED', 1200, 1, 100_000_000),
      loginPerIpPerMinute: integer(env, 'MERCATO_LOGIN_RATE_LIMIT', 30, 1, 100_000_000),
      loginFailuresPerAccount: integer(env, 'MERCATO_LOGIN_MAX_FAILURES', 5, 1, 100_000_000),
      loginLockSeconds: integer(env, 'MERCATO_LOGIN_LOCK_SECONDS', 900, 1, 86_400),
    },
    purgeIntervalSeconds: integer(env, 'MERCATO_PURGE_INTERVAL', 3600, 1, 86_400),
    dbPoolSize: integer(env, 'MERCATO_DB_POOL_SIZE', 20, 1, 1000),
    profileCacheTtlSeconds: integer(env, 'MERCATO_PROFILE_CACHE_TTL', 30, 0, 3600),
    walLeaseSeconds: integer(env, 'MERCATO_WAL_LEASE_SECONDS', 30, 1, 3600),
    walDelivery: boolean(env, 'MERCATO_WAL_DELIVERY', true),
    dbStatementTimeoutMs: integer(env, 'MERCATO_DB_STATEMENT_TIMEOUT_MS', 5000, 100, 3_600_000),
    dbConnectTimeoutSeconds: integer(env, 'MERCATO_DB_CONNECT_TIMEOUT_SECONDS', 30, 0, 3600),
    redisPrefix,
    walPrivateTargets: (read(env, 'MERCATO_WAL_PRIVATE_TARGETS') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    walMaxConcurrency: integer(env, 'MERCATO_WAL_MAX_CONCURRENCY', 64, 1, 256),
    walMaxNamespaces: integer(env, 'MERCATO_WAL_MAX_NAMESPACES', 100, 1, 100_000),
    // At least 7 days: a system namespace keeps its dead letters that long at least (SYSTEM_MIN_DEAD_RETENTION_SECONDS).
    walMaxRetentionSeconds: integer(
      env,
      'MERCATO_WAL_MAX_RETENTION_SECONDS',
      365 * 86_400,
      7 * 86_400,
      3650 * 86_400,
    ),
    walSystemRetry: walSystemRetry(env),
    refreshReuseGraceSeconds: integer(env, 'MERCATO_REFRESH_REUSE_GRACE_SECONDS', 10, 0, 3600),
    metricsToken: metricsToken(env),
    eventsBackend: eventsBackend(env),
    reservationTtlSeconds: integer(env, 'MERCATO_RESERVATION_TTL_SECONDS', 900, 1, 30 * 86_400),
    cartTtlSeconds: integer(env, 'MERCATO_CART_TTL_SECONDS', 7 * 86_400, 60, 365 * 86_400),
    searchCacheTtlSeconds: integer(env, 'MERCATO_SEARCH_CACHE_TTL_SECONDS', 60, 0, 3600),
    checkoutStepTimeoutMs: integer(env, 'MERCATO_CHECKOUT_STEP_TIMEOUT_MS', 10_000, 100, 600_000),
    checkoutPendingTimeoutMs: integer(env, 'MERCATO_CHECKOUT_PENDING_TIMEOUT_MS', 600_000, 1000, 86_400_000),
    checkoutInlineMs: integer(env, 'MERCATO_CHECKOUT_INLINE_MS', 2000, 0, 60_000),
    flashCustomerRate: integer(env, 'MERCATO_FLASH_CUSTOMER_RATE', 5, 1, 1_000_000),
    flashIpRate: integer(env, 'MERCATO_FLASH_IP_RATE', 2000, 1, 100_000_000),
    flashLeakGraceMs: integer(env, 'MERCATO_FLASH_LEAK_GRACE_MS', 30_000, 1000, 86_400_000),
    testPayments: boolean(env, 'MERCATO_TEST_PAYMENTS', read(env, 'NODE_ENV') !== 'production'),
    testPspLatencyMs: integer(env, 'MERCATO_TEST_PSP_LATENCY_MS', 0, 0, 600_000),
    checkoutPauseAfterStep: pauseAfterStep(env),
    secretsKey: secretsKey(env),
    secretsPreviousKeys: secretsPreviousKeys(env),
    sourceBreakerFailures: integer(env, 'MERCATO_SOURCE_BREAKER_FAILURES', 5, 1, 1000),
    sourceBreakerHalfOpenMs: integer(env, 'MERCATO_SOURCE_BREAKER_HALF_OPEN_MS', 30_000, 100, 3_600_000),
  };
}
