import { isIP } from 'node:net';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../platform/db/index.ts';
import {
  AppError,
  actorOf,
  Nullable,
  principalOf,
  requireOperator,
  SECURED,
} from '../platform/http/index.ts';
import { REFUSED_MESSAGE, type SsrfGuard, SsrfRefusedError, UNRESOLVED_MESSAGE } from '../wal/index.ts';
import type { ExceptionsDeps } from './deps.ts';
import type { SecretBox } from './secrets.ts';
import type { SourceBreakers } from './source-breakers.ts';
import { deleteSource, getSource, listSources, saveSource, sourceView } from './source-store.ts';
import type { ExceptionsTrx, InterfaceType } from './tables.ts';

const base = { tags: ['exceptions'], security: SECURED as Record<string, string[]>[] };
/** How long a source's host may take to resolve when it is stored. */
const LOOKUP_TIMEOUT_MS = 3000;

const InterfaceTypeSchema = Type.Union([
  Type.Literal('ORDER'),
  Type.Literal('COLLECTION'),
  Type.Literal('DISTRIBUTION'),
  Type.Literal('VALIDATION'),
]);
const Params = Type.Object({ interfaceType: InterfaceTypeSchema });

const Credentials = Type.Union(
  [
    Type.Object(
      { token: Type.String({ minLength: 1, maxLength: 4096, pattern: '^[\\x21-\\x7e]+$' }) },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        username: Type.String({ minLength: 1, maxLength: 200, pattern: '^[^:\\x00-\\x1f\\x7f]+$' }),
        password: Type.String({ minLength: 1, maxLength: 1000, pattern: '^[^\\x00-\\x1f\\x7f]+$' }),
      },
      { additionalProperties: false },
    ),
  ],
  {
    description:
      'A bearer token {token}, or HTTP Basic {username, password}; stored encrypted and never shown again. ' +
      'Omitted: kept as stored (400 when baseUrl moves to another origin: give them again); null: removed.',
  },
);

const SourceBody = Type.Object(
  {
    baseUrl: Type.String({
      minLength: 1,
      maxLength: 2000,
      description:
        'http(s) URL; Mercato GETs {baseUrl}/payloads/{externalId or transactionId} and POSTs {baseUrl}/retry. ' +
        'Loopback, private, link-local and metadata addresses are refused (the WAL’s SSRF rules).',
    }),
    credentials: Type.Optional(Nullable(Credentials)),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 30_000, description: 'Default 5000' })),
  },
  { additionalProperties: false },
);

const SourceSchema = Type.Object({
  interfaceType: InterfaceTypeSchema,
  baseUrl: Type.String(),
  timeoutMs: Type.Integer(),
  hasCredentials: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  signingSecret: Type.Optional(
    Type.String({
      description:
        'Only in the answer that made it (shown once): verifies the Standard Webhooks signature of retries',
    }),
  ),
});

/** The longest base URL stored (migration 0031's check on sources.base_url). */
const MAX_BASE_URL = 2000;

const invalidUrl = (message: string) =>
  new AppError('VALIDATION_FAILED', `baseUrl ${message}`, {
    errors: [{ in: 'body', pointer: '/baseUrl', message }],
  });

function resolves(guard: SsrfGuard, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('lookup timed out')), LOOKUP_TIMEOUT_MS);
    guard.lookupFor(port)(host, {}, (error) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve();
    });
  });
}

/**
 * The base URL as stored, or 400 naming /baseUrl: http(s), no credentials, query or fragment, and
 * a host the WAL's SSRF guard lets through now (it checks every call again, where it connects).
 */
async function checkBaseUrl(guard: SsrfGuard, raw: string): Promise<string> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidUrl('must be an http or https URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidUrl('must be an http or https URL');
  if (url.username || url.password) throw invalidUrl('must not carry credentials (give them as credentials)');
  if (url.search || url.hash) throw invalidUrl('must not have a query or a fragment');
  // Stored as the URL parser writes it, which percent-encodes: the column holds 2,000 characters.
  if (url.href.length > MAX_BASE_URL) {
    throw invalidUrl(`must be at most ${MAX_BASE_URL} characters once percent-encoded`);
  }
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  const bare = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (isIP(bare) !== 0) {
    if (guard.refusal(bare, bare, port) !== undefined) throw invalidUrl(REFUSED_MESSAGE);
    return url.href;
  }
  try {
    await resolves(guard, url.hostname, port);
  } catch (error) {
    throw invalidUrl(error instanceof SsrfRefusedError ? REFUSED_MESSAGE : UNRESOLVED_MESSAGE);
  }
  return url.href;
}

export type SourceRouteParts = {
  deps: ExceptionsDeps;
  box: SecretBox;
  guard: SsrfGuard;
  breakers: SourceBreakers;
};

/** /exceptions/sources: where each interface type's payloads are fetched and retries sent (operators). */
export function sourceRoutes({ deps, box, guard, breakers }: SourceRouteParts) {
  const notFound = (type: string) => new AppError('NOT_FOUND', `no source is configured for ${type}`);
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/exceptions/sources',
      {
        preValidation: requireOperator('exceptions:read'),
        schema: {
          ...base,
          summary: "The tenant's sources, one per interface type (credentials never shown)",
          response: { 200: Type.Object({ items: Type.Array(SourceSchema) }) },
        },
      },
      async (request) => {
        const { tenantId } = principalOf(request);
        const rows = await withTenant(deps.db, tenantId, (trx) =>
          listSources(trx as ExceptionsTrx, tenantId),
        );
        return { items: rows.map(sourceView) };
      },
    );

    app.get(
      '/exceptions/sources/:interfaceType',
      {
        preValidation: requireOperator('exceptions:read'),
        schema: { ...base, summary: 'One source', params: Params, response: { 200: SourceSchema } },
      },
      async (request) => {
        const { tenantId } = principalOf(request);
        const { interfaceType } = request.params;
        const row = await withTenant(deps.db, tenantId, (trx) =>
          getSource(trx as ExceptionsTrx, tenantId, interfaceType),
        );
        if (!row) throw notFound(interfaceType);
        return sourceView(row);
      },
    );

    app.put(
      '/exceptions/sources/:interfaceType',
      {
        preValidation: requireOperator('exceptions:write'),
        schema: {
          ...base,
          summary:
            'Create (201, with its signing secret shown once) or replace (200) the source of an interface type; ' +
            'its circuit breaker starts closed again',
          params: Params,
          body: SourceBody,
          response: { 200: SourceSchema, 201: SourceSchema },
        },
      },
      async (request, reply) => {
        const { tenantId, actor } = actorOf(request);
        const interfaceType: InterfaceType = request.params.interfaceType;
        const { body } = request;
        const baseUrl = await checkBaseUrl(guard, body.baseUrl);
        // Loaded before the transaction: deriving the key reads the database (one connection on PGlite).
        await box.ready();
        const saved = await withTenant(deps.db, tenantId, (trx) =>
          saveSource(trx as ExceptionsTrx, box, tenantId, interfaceType, {
            baseUrl,
            timeoutMs: body.timeoutMs ?? 5000,
            credentials: body.credentials,
          }),
        );
        breakers.drop(tenantId, interfaceType);
        request.log.info(
          { tenantId, interfaceType, actor, created: saved.created },
          'exception source saved',
        );
        reply.code(saved.created ? 201 : 200).header('cache-control', 'no-store');
        if (saved.created) reply.header('location', `/api/v1/exceptions/sources/${interfaceType}`);
        return { ...sourceView(saved.row), ...(saved.shown ? { signingSecret: saved.shown } : {}) };
      },
    );

    app.delete(
      '/exceptions/sources/:interfaceType',
      {
        preValidation: requireOperator('exceptions:write'),
        schema: { ...base, summary: 'Remove a source', params: Params, response: { 204: Type.Null() } },
      },
      async (request, reply) => {
        const { tenantId } = principalOf(request);
        const { interfaceType } = request.params;
        const deleted = await withTenant(deps.db, tenantId, (trx) =>
          deleteSource(trx as ExceptionsTrx, tenantId, interfaceType),
        );
        if (!deleted) throw notFound(interfaceType);
        breakers.drop(tenantId, interfaceType);
        return reply.code(204).send(null);
      },
    );
  };
}
