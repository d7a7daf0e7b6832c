import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../../platform/db/index.ts';
import {
  AppError,
  beforeBody,
  isGrantable,
  PERMISSIONS,
  requireUser,
  SECURED,
  userOf,
  validationFailed,
} from '../../platform/http/index.ts';
import type { IdentityDeps } from '../module.ts';
import { PageOf, PageQuery, readPage, toPage } from '../users/page-cursor.ts';
import { forgetApiKey } from './api-key-auth.ts';
import { createApiKey, listApiKeys, MAX_API_KEY_LIFETIME_YEARS, revokeApiKey } from './api-key-store.ts';

const Permission = Type.String({
  // A resource may be named with inner hyphens, as the routes name flash-sales:read.
  pattern: '^[a-z]+(?:-[a-z]+)*:[a-z*]+$',
  maxLength: 100,
  description: `resource:action, one of ${PERMISSIONS.join(', ')}; or resource:* for all of a resource's`,
});

/** Refuses permissions no route checks (a typo would make a key that silently can do nothing). */
function checkGrantable(permissions: string[]): void {
  const errors = permissions.flatMap((permission, i) =>
    isGrantable(permission)
      ? []
      : [
          {
            in: 'body' as const,
            pointer: `/permissions/${i}`,
            message: `${permission} is no permission a route checks; grant one of ${PERMISSIONS.join(', ')}, or resource:* for all of a resource's`,
          },
        ],
  );
  if (errors.length > 0) throw validationFailed(errors);
}
const Namespace = Type.String({ pattern: '^[a-z0-9*][a-z0-9._*-]{0,127}$', description: 'A WAL namespace' });

const ApiKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    permissions: Type.Array(Permission, { maxItems: 100, uniqueItems: true }),
    namespaces: Type.Optional(Type.Array(Namespace, { maxItems: 100, uniqueItems: true })),
    expiresAt: Type.Optional(
      Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
        description: `When the key stops working (RFC 3339, in the future, at most ${MAX_API_KEY_LIFETIME_YEARS} years ahead); omitted or null: it works until revoked`,
      }),
    ),
  },
  { additionalProperties: false },
);

const ApiKeyView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, to tell keys apart' }),
  permissions: Type.Array(Type.String()),
  namespaces: Type.Array(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
  lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'When the key stops working (refused as a revoked key is); null: never',
  }),
});

const CreatedApiKey = Type.Object({
  ...ApiKeyView.properties,
  key: Type.String({ description: 'The secret, shown this once only: send it as X-API-Key' }),
});

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
// SECURED's inferred type is not FastifySchema's security shape; its value is.
const base = { tags: ['api-keys'], security: SECURED as Record<string, string[]>[] };

/** POST/GET /api-keys and DELETE /api-keys/{id}: a tenant admin manages the tenant's machine keys. */
export function apiKeyRoutes(deps: IdentityDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    // The caller is checked before the body is read (after the rate limit), so a stranger learns nothing from a 400.
    app.addHook('preParsing', beforeBody(requireUser('admin')));

    app.post(
      '/api-keys',
      {
        // The answer holds the secret, shown once: it is never stored for an Idempotency-Key replay.
        config: { idempotency: false },
        schema: { ...base, summary: 'Create an API key', body: ApiKeyBody, response: { 201: CreatedApiKey } },
      },
      async (request, reply) => {
        const { tenantId, userId } = userOf(request);
        const { name, permissions, namespaces = [], expiresAt } = request.body;
        checkGrantable(permissions);
        const created = await withTenant(deps.db, tenantId, (trx) =>
          createApiKey(trx, { tenantId, name, permissions, namespaces, createdBy: userId, expiresAt }),
        );
        reply.code(201).header('cache-control', 'no-store');
        return created;
      },
    );

    app.get(
      '/api-keys',
      {
        schema: {
          ...base,
          summary: 'List unrevoked API keys, expired ones too, newest first (never their secrets)',
          querystring: Type.Object(PageQuery, { additionalProperties: false }),
          response: { 200: PageOf(ApiKeyView) },
        },
      },
      async (request) => {
        const { tenantId } = userOf(request);
        const { limit, after } = readPage(request.query);
        const rows = await withTenant(deps.db, tenantId, (trx) =>
          listApiKeys(trx, tenantId, limit + 1, after),
        );
        return toPage(rows, limit);
      },
    );

    app.delete(
      '/api-keys/:id',
      {
        schema: {
          ...base,
          summary: 'Revoke an API key',
          description:
            'Every process stops accepting the key within moments (NOTIFY drops it from their lookup caches).',
          params: IdParams,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        const { tenantId } = userOf(request);
        const { id } = request.params;
        const revoked = await withTenant(deps.db, tenantId, (trx) => revokeApiKey(trx, tenantId, id));
        if (!revoked) throw new AppError('NOT_FOUND', `API key ${id} not found`);
        // The stored id: the cache compares ids as text, and the path may spell this one in capitals.
        forgetApiKey(deps, revoked);
        return reply.code(204).send(null);
      },
    );
  };
}
