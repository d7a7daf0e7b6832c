import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance } from 'fastify';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMercatoModules } from '../../modules.ts';
import { startTestApp, type TestApp } from '../testing/index.ts';
import { operationIdOf } from './openapi-components.ts';

type Operation = {
  security?: Record<string, string[]>[];
  parameters?: { in: string; name: string }[];
  requestBody?: unknown;
  responses?: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
};
type OpenApiDocument = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, { properties?: Record<string, { enum?: string[] }> }> };
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** "METHOD /path" for every route Fastify serves, read from printRoutes' tree (HEAD and OPTIONS left out). */
function servedRoutes(app: FastifyInstance): string[] {
  const stack: string[] = [];
  const routes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^([│├└─\s]*)(\S+) \(([A-Z, ]+)\)$/.exec(line);
    if (!match) continue;
    const depth = Math.floor(match[1]!.length / 4);
    stack.length = depth;
    stack.push(match[2]!);
    const path = stack.join('');
    for (const method of match[3]!.split(', ')) {
      if (method !== 'HEAD' && method !== 'OPTIONS') routes.push(`${method} ${path}`);
    }
  }
  return routes;
}

/** The OpenAPI path of a Fastify route: /users/:id becomes /users/{id}. */
const openApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

describe('/openapi.json', () => {
  let t: TestApp;
  let doc: OpenApiDocument;
  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => METHODS.includes(method))
        .map(([method, operation]) => ({ path, method, operation })),
    );

  beforeAll(async () => {
    t = await startTestApp(
      {},
      { modules: async (ctx, identity) => (await createMercatoModules(ctx, identity)).modules },
    );
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    doc = res.json();
  });
  afterAll(() => t?.close());

  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc as never);
    if (!result.valid) console.error(JSON.stringify(result.errors, null, 2));
    expect(result.valid).toBe(true);
  });

  it('documents every /api/v1 route the app serves, and nothing it does not', () => {
    const served = servedRoutes(t.app)
      .filter((route) => route.split(' ')[1]!.startsWith('/api/v1/'))
      .map((route) => {
        const [method, path] = route.split(' ');
        return `${method} ${openApiPath(path!)}`;
      });
    expect(served.length).toBeGreaterThan(10);
    const documented = operations()
      .filter((o) => o.path.startsWith('/api/v1/'))
      .map((o) => `${o.method.toUpperCase()} ${o.path}`);
    expect(documented.sort()).toEqual(served.sort());
  });

  it('documents each path parameter of each route', () => {
    for (const { path, method, operation } of operations()) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const documented = (operation.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      expect(documented.sort(), `${method} ${path}`).toEqual(names.sort());
    }
  });

  it('marks every route that needs a credential with security, and only those', async () => {
    for (const { path, method, operation } of operations().filter((o) => o.path.startsWith('/api/v1/'))) {
      const url = path.replace(/\{\w+\}/g, uuidv7());
      const res = await t.app.inject({
        method: method.toUpperCase() as 'GET',
        url,
        ...(operation.requestBody ? { payload: {} } : {}),
      });
      const where = `${method.toUpperCase()} ${path} answered ${res.statusCode}`;
      const optional = operation.security?.some((requirement) => Object.keys(requirement).length === 0);
      if (optional) {
        // A storefront route: a credential is optional, an anonymous shopper names the store.
        expect(operation.security, where).toEqual([{}, { bearerAuth: [] }, { apiKeyAuth: [] }]);
        expect(res.statusCode, where).not.toBe(401);
        // Validation (a required query parameter) may answer before the store is looked up.
        expect(['TENANT_REQUIRED', 'VALIDATION_FAILED'], where).toContain(res.json().code);
      } else if (operation.security) {
        expect(operation.security, where).toEqual([{ bearerAuth: [] }, { apiKeyAuth: [] }]);
        // Without a body to validate the guard answers; with one, validation may answer first.
        if (operation.requestBody) expect([400, 401], where).toContain(res.statusCode);
        else expect(res.statusCode, where).toBe(401);
      } else if (/^\/api\/v1\/payments\/webhooks\//.test(path)) {
        // A payment provider's webhook: no credential, its signature is checked instead.
        expect(res.json().code, where).toBe('INVALID_WEBHOOK_SIGNATURE');
      } else {
        expect(res.statusCode, where).not.toBe(401);
        expect(path, where).toMatch(/^\/api\/v1\/auth\//);
      }
    }
  });

  it('declares the bearer and API key schemes the security requirements name', () => {
    const schemes = (doc as unknown as { components: { securitySchemes: Record<string, unknown> } })
      .components.securitySchemes;
    expect(schemes['bearerAuth']).toEqual({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(schemes['apiKeyAuth']).toEqual({ type: 'apiKey', in: 'header', name: 'X-API-Key' });
  });

  it('describes every error answer as a problem document with the catalogue of codes', () => {
    const codes = doc.components?.schemas?.['Problem']?.properties?.['code']?.enum ?? [];
    expect(codes).toEqual(
      expect.arrayContaining(['VALIDATION_FAILED', 'NOT_FOUND', 'RATE_LIMITED', 'INTERNAL']),
    );
    for (const { operation } of operations()) {
      for (const range of ['4XX', '5XX']) {
        const schema = operation.responses?.[range]?.content?.['application/problem+json']?.schema;
        expect(schema?.$ref).toBe('#/components/schemas/Problem');
      }
    }
  });

  it('gives every operation an operationId, each unique', () => {
    const ids = operations().map((o) => (o.operation as { operationId?: string }).operationId);
    expect(
      ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z0-9]*$/.test(id)),
      ids.join(),
    ).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const byRoute = Object.fromEntries(
      operations().map((o) => [
        `${o.method} ${o.path}`,
        (o.operation as { operationId?: string }).operationId,
      ]),
    );
    expect(byRoute['post /api/v1/wal/namespaces']).toBe('createNamespace');
    expect(byRoute['get /api/v1/users/addresses/{id}']).toBe('getUsersAddressesById');
    expect(operationIdOf('post', '/api/v1/wal/namespaces/{name}/dlq/{messageId}/requeue')).toBe(
      'postWalNamespacesByNameDlqByMessageIdRequeue',
    );
  });

  it('keeps shared schemas under components and refers to them', () => {
    const schemas = (doc.components?.schemas ?? {}) as Record<string, Record<string, unknown>>;
    for (const name of [
      'Problem',
      'Address',
      'Namespace',
      'Target',
      'HttpTarget',
      'SqlTarget',
      'RedisTarget',
      'InternalTarget',
    ]) {
      expect(schemas[name], name).toBeDefined();
    }
    const kinds = { http: 'HttpTarget', sql: 'SqlTarget', redis: 'RedisTarget', internal: 'InternalTarget' };
    const refs = Object.values(kinds).map((name) => ({ $ref: `#/components/schemas/${name}` }));
    expect(schemas['Target']?.['oneOf']).toEqual(refs);
    expect(schemas['Target']?.['discriminator']).toEqual({
      propertyName: 'type',
      mapping: Object.fromEntries(
        Object.entries(kinds).map(([type, name]) => [type, `#/components/schemas/${name}`]),
      ),
    });
    for (const [type, name] of Object.entries(kinds)) {
      const kind = schemas[name] as { properties: { type: unknown }; required: string[] };
      expect([{ const: type }, { enum: [type] }]).toContainEqual(kind.properties.type);
      expect(kind.required).toContain('type');
    }
    const text = JSON.stringify(doc.paths);
    const namespace = schemas['Namespace'] as { properties: { targets: { items: unknown } } };
    expect(namespace.properties.targets.items).toEqual({ $ref: '#/components/schemas/Target' });
    const body = (doc.paths['/api/v1/wal/namespaces']?.['post']?.requestBody ?? {}) as {
      content: Record<string, { schema: { properties: { targets: { items: unknown } } } }>;
    };
    expect(body.content['application/json']?.schema.properties.targets.items).toEqual({
      $ref: '#/components/schemas/Target',
    });
    for (const name of ['Namespace', 'Address']) expect(text).toContain(`"#/components/schemas/${name}"`);
    // Every reference resolves inside the document.
    for (const [, name] of JSON.stringify(doc).matchAll(/"#\/components\/schemas\/([^"]+)"/g)) {
      expect(schemas[name!], name).toBeDefined();
    }
  });

  it('documents /metrics and /.well-known/jwks.json', () => {
    const metrics = doc.paths['/metrics']?.['get'] as Operation & {
      responses: Record<string, { content?: object }>;
    };
    expect(metrics.security).toEqual([{ metricsToken: [] }, {}]);
    expect(Object.keys(metrics.responses['200']?.content ?? {})).toEqual(['text/plain']);
    const jwks = doc.paths['/.well-known/jwks.json']?.['get'];
    expect(jwks?.responses?.['200']?.content?.['application/json']?.schema).toMatchObject({
      required: ['keys'],
    });
    const schemes = (doc as unknown as { components: { securitySchemes: Record<string, unknown> } })
      .components.securitySchemes;
    expect(schemes['metricsToken']).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('serves the docs UI as HTML at /docs', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/docs' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('<html');
    const initializer = await t.app.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' });
    expect(initializer.statusCode).toBe(200);
  });
});
