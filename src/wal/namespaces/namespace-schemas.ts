import { Type } from 'typebox';
import { DOCUMENT_AS } from '../../platform/http/index.ts';
import { NAME_PATTERN } from './check-target.ts';
import { TARGET_DOC } from './target-schemas.ts';
import { BACKENDS } from './validate.ts';

/** The shapes of the namespace routes' bodies, parameters and answers (routes.ts). */
const Backend = Type.Enum([...BACKENDS]);
const Name = Type.String({ pattern: NAME_PATTERN, description: 'Lower case letters, digits, . _ -' });

const Retry = Type.Object(
  {
    strategy: Type.Optional(Type.Enum(['exponential', 'linear', 'fixed'])),
    baseDelayMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 })),
    maxDelayMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000 })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    jitter: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  },
  { additionalProperties: false },
);

// Targets are checked field by field in validate.ts, which names every failing field.
const TargetIn = Type.Object(
  { type: Type.String({ description: 'http, sql, redis or internal' }), name: Type.String() },
  {
    additionalProperties: true,
    description:
      'http {url, secret (whsec_…), timeoutMs?, headers?} | sql {statement, params: JSON pointers} | ' +
      'redis {command: DEL|PUBLISH, key, message?} | internal {handler}; all take enabled?',
    [DOCUMENT_AS]: TARGET_DOC,
  },
);

const Settings = {
  backend: Type.Optional(Backend),
  fallbackBackend: Type.Optional(Type.Union([Backend, Type.Null()])),
  payloadSchema: Type.Optional(
    Type.Union([Type.Object({}, { additionalProperties: true, description: 'A JSON Schema' }), Type.Null()]),
  ),
  retry: Type.Optional(Retry),
  targets: Type.Optional(Type.Array(TargetIn, { maxItems: 32 })),
  rateLimitPerSecond: Type.Optional(
    Type.Union([Type.Integer({ minimum: 1, maximum: 1_000_000 }), Type.Null()]),
  ),
  maxDelayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 31_536_000_000 })),
  maxPayloadBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: 16_777_216 })),
  deliveredRetentionSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647 })),
  deadRetentionSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 2_147_483_647 })),
  allowedHosts: Type.Optional(
    Type.Array(
      Type.String({
        minLength: 1,
        maxLength: 253,
        pattern: '^([A-Za-z0-9.-]+|\\[?[0-9A-Fa-f:.]+\\]?)$',
        description:
          'A host name, IPv4 address or IPv6 address (brackets optional) HTTP targets may point at',
      }),
      { maxItems: 100 },
    ),
  ),
  consumerConcurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 256 })),
  enabled: Type.Optional(Type.Boolean()),
};

export const CreateBody = Type.Object({ name: Name, ...Settings }, { additionalProperties: false });
export const UpdateBody = Type.Object(
  {
    name: Type.Optional(
      Type.String({ pattern: NAME_PATTERN, description: 'The current name (namespaces cannot be renamed)' }),
    ),
    ...Settings,
  },
  { additionalProperties: false },
);
export const NameParams = Type.Object({ name: Name });

const Circuit = Type.Object(
  {
    state: Type.Enum(['closed', 'open', 'half-open']),
    since: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    failures: Type.Integer(),
    lastError: Type.Optional(Type.String()),
  },
  { description: "HTTP targets: this process's circuit breaker (open: deliveries are not attempted)" },
);

const TargetOut = Type.Object(
  { type: Type.String(), name: Type.String(), enabled: Type.Boolean(), circuit: Type.Optional(Circuit) },
  {
    additionalProperties: true,
    description: 'HTTP secrets are masked: whsec_… and the last 4 characters',
    [DOCUMENT_AS]: TARGET_DOC,
  },
);

export const NamespaceView = Type.Object(
  {
    name: Type.String(),
    backend: Backend,
    fallbackBackend: Type.Union([Backend, Type.Null()]),
    drainingBackends: Type.Array(Backend, {
      description:
        'Stream backends the namespace named before (as backend or fallback) and no longer: they take no new writes ' +
        'and go on delivering the messages they hold for it; one leaves the list once it holds nothing more to ' +
        'deliver (read-only)',
    }),
    payloadSchema: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
    retry: Type.Object({
      strategy: Type.String(),
      baseDelayMs: Type.Integer(),
      maxDelayMs: Type.Integer(),
      maxAttempts: Type.Integer(),
      jitter: Type.Number(),
    }),
    targets: Type.Array(TargetOut),
    rateLimitPerSecond: Type.Union([Type.Integer(), Type.Null()]),
    maxDelayMs: Type.Integer(),
    maxPayloadBytes: Type.Integer(),
    deliveredRetentionSeconds: Type.Integer(),
    deadRetentionSeconds: Type.Integer(),
    allowedHosts: Type.Array(Type.String()),
    consumerConcurrency: Type.Integer(),
    enabled: Type.Boolean(),
    system: Type.Boolean({
      description:
        'A system namespace (domain events): cannot be deleted, disabled or renamed, nor its backend changed; a tenant ' +
        'may change targets, retry (its own targets only), allowedHosts, consumerConcurrency, the retention periods',
    }),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { title: 'Namespace' },
);
