/**
 * How the OpenAPI document describes a namespace target: one schema per kind, a discriminated
 * `oneOf` on `type`. Documentation only: the routes accept any object with a type and a name and
 * validate.ts checks each kind field by field (naming every failing field), as described here.
 * Titled schemas become `#/components/schemas/<title>` (platform/http/openapi-components.ts).
 */

import { MAX_TARGET_HEADERS, NAME_PATTERN, SECRET_PATTERN } from './check-target.ts';
import { TYPE_PATTERN } from './type-patterns.ts';

const common = {
  name: { type: 'string', pattern: NAME_PATTERN, description: 'Unique within the namespace' },
  enabled: { type: 'boolean', default: true },
  types: {
    type: 'array',
    minItems: 1,
    maxItems: 20,
    items: { type: 'string', maxLength: 200, pattern: TYPE_PATTERN.source },
    description:
      'Event types this target receives: exact (mercato.product.created), a prefix ending in .* ' +
      '(mercato.product.*) or *. A message of another type (its ce-type header, else type, else ' +
      'mercato.wal.<namespace>) is skipped for this target. Absent: every message.',
  },
  system: {
    type: 'boolean',
    readOnly: true,
    description:
      "In answers, on system namespaces: a target of one of Mercato's modules (an internal subscriber); " +
      'it cannot be removed, changed or replaced',
  },
};

const HttpTarget = {
  title: 'HttpTarget',
  type: 'object',
  description:
    'POSTs a signed CloudEvent (Standard Webhooks headers) to url, through the SSRF guard: never to ' +
    'loopback, private, link-local or metadata addresses unless the operator opened them.',
  required: ['type', 'name', 'url'],
  additionalProperties: false,
  properties: {
    type: { const: 'http' },
    ...common,
    url: { type: 'string', format: 'uri', maxLength: 2048, description: 'http or https' },
    secret: {
      type: 'string',
      pattern: SECRET_PATTERN,
      description:
        'Signing secret, required on create. Answers show it masked (whsec_… and the last 4 ' +
        'characters); an update without it, or with the masked value, keeps the stored one.',
    },
    timeoutMs: { type: 'integer', minimum: 100, maximum: 60_000, default: 10_000 },
    headers: {
      type: 'object',
      additionalProperties: { type: 'string' },
      maxProperties: MAX_TARGET_HEADERS,
      description:
        'Extra request headers (at most 50, 16384 bytes of names and values); not Host, ' +
        'Content-Length, Transfer-Encoding, Connection, TE, Upgrade, Proxy-* or Webhook-*. ' +
        'Credential headers (Authorization, Cookie, names containing auth, token, key, secret, ' +
        'passw, pwd, credential, session or signature) are stored encrypted and answered masked ' +
        '(… and the last 4 characters); an update sending the masked value keeps the stored one.',
    },
    circuit: {
      type: 'object',
      readOnly: true,
      description: "In answers: this process's circuit breaker for the target (open: deliveries wait)",
      properties: {
        state: { enum: ['closed', 'open', 'half-open'] },
        since: { type: ['string', 'null'], format: 'date-time' },
        failures: { type: 'integer' },
        lastError: { type: 'string' },
      },
    },
  },
};

const SqlTarget = {
  title: 'SqlTarget',
  type: 'object',
  description:
    'Operator only (namespaces of the platform tenant), PostgreSQL only: runs statement with $n ' +
    'parameters read from JSON pointers. A tenant admin sending one gets 403 TARGET_TYPE_FORBIDDEN, ' +
    'and so does everyone on embedded PGlite (every statement there runs as its superuser).',
  required: ['type', 'name', 'statement'],
  additionalProperties: false,
  properties: {
    type: { const: 'sql' },
    ...common,
    statement: { type: 'string', minLength: 1, maxLength: 10_000 },
    params: {
      type: 'array',
      items: { type: 'string', description: 'JSON pointer (RFC 6901), e.g. /payload/orderId' },
      default: [],
    },
  },
};

const RedisTarget = {
  title: 'RedisTarget',
  type: 'object',
  description:
    "DEL key or PUBLISH key message, always under the tenant's own prefix " +
    '(MERCATO_REDIS_PREFIX t:<tenantId>:); {/json/pointer} placeholders are filled from the message.',
  required: ['type', 'name', 'command', 'key'],
  additionalProperties: false,
  properties: {
    type: { const: 'redis' },
    ...common,
    command: { enum: ['DEL', 'PUBLISH'] },
    key: { type: 'string', minLength: 1, maxLength: 1024 },
    message: { type: 'string', description: 'Required for PUBLISH' },
  },
};

const InternalTarget = {
  title: 'InternalTarget',
  type: 'object',
  description: "Calls a handler one of Mercato's modules registered, exactly once per message",
  required: ['type', 'name', 'handler'],
  additionalProperties: false,
  properties: {
    type: { const: 'internal' },
    ...common,
    handler: { type: 'string', pattern: '^[a-z][a-zA-Z0-9._:-]{0,99}$', description: 'e.g. orders.reserve' },
  },
};

const ref = (name: string) => `#/components/schemas/${name}`;

/** A namespace target as documented: one of the four kinds, told apart by `type`. */
export const TARGET_DOC = {
  title: 'Target',
  oneOf: [HttpTarget, SqlTarget, RedisTarget, InternalTarget],
  discriminator: {
    propertyName: 'type',
    mapping: {
      http: ref('HttpTarget'),
      sql: ref('SqlTarget'),
      redis: ref('RedisTarget'),
      internal: ref('InternalTarget'),
    },
  },
};
