import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { uuidv7 } from 'uuidv7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../identity/index.ts';
import { createTenant } from '../../identity/tenants/index.ts';
import { createUser } from '../../identity/users/index.ts';
import { createMercatoModules } from '../../modules.ts';
import { withTenant } from '../db/index.ts';
import { startTestApp } from '../testing/index.ts';

/**
 * Property: whatever a caller sends to a route (any body, path parameter or query string, with
 * or without a credential), the answer is never a 5xx, and every 4xx is a problem with a code.
 * The routes and their schemas come from the app's own OpenAPI document, so a new route is
 * fuzzed without touching this file. FC_SEED=<seed> replays a failure fast-check reported;
 * FC_RUNS=<n> runs longer than the default 30 cases per route and kind.
 */

type Schema = {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  anyOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: Schema;
  maxItems?: number;
};
type Parameter = { in: 'path' | 'query'; name: string; schema: Schema };
type Operation = {
  parameters?: Parameter[];
  requestBody?: { content: { 'application/json': { schema: Schema } } };
};

const PASSWORD = 'correct horse battery staple';
const PLATFORM_TENANT_ID = '00000000-0000-7000-8000-000000000001';
const RUNS = {
  numRuns: Number(process.env['FC_RUNS'] ?? 30),
  ...(process.env['FC_SEED'] ? { seed: Number(process.env['FC_SEED']) } : {}),
};

// Every module's routes, as the server composes them.
const t = await startTestApp(
  {},
  { modules: async (ctx, identity) => (await createMercatoModules(ctx, identity)).modules },
);
const doc: { paths: Record<string, Record<string, Operation>> } = (
  await t.app.inject({ method: 'GET', url: '/openapi.json' })
).json();
const operations = Object.entries(doc.paths)
  .filter(([path]) => path.startsWith('/api/v1/'))
  .flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({
      name: `${method.toUpperCase()} ${path}`,
      path,
      method,
      operation,
    })),
  );

/** Strings that have broken web backends before: NUL, lone surrogates, SQL and path tricks, odd numbers. */
const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udfff',
  '\uffff',
  '\u202e',
  '😀',
  'ö'.repeat(300),
  "' or 1=1 --",
  '"; drop table identity.users; --',
  '../../etc/passwd',
  '%00',
  '%zz',
  '__proto__',
  'constructor',
  'prototype',
  'null',
  'undefined',
  'NaN',
  '-1',
  '0',
  '1e309',
  '9'.repeat(40),
  'urn:uuid:0190d4c5-7f8b-7c3e-9a4b-123456789abc',
  '0190D4C5-7F8B-7C3E-9A4B-123456789ABC',
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
];

const nastyString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  { weight: 1, arbitrary: fc.integer({ min: 150, max: 70_000 }).map((n) => 'x'.repeat(n)) },
);

/** JSON values of every type, including ones that are valid JSON but odd for JavaScript. */
const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  nastyString,
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(
    0,
    -0,
    -1,
    1.5,
    2 ** 31,
    2 ** 53 + 2,
    -(2 ** 63),
    1e308,
    true,
    false,
    null,
    [],
    {},
    [null],
    { '': '' },
  ),
);

/** A uuid in any of the spellings a uuid format check may let through. */
const uuidLike = fc.oneof(
  fc.uuid(),
  fc.constant(uuidv7()),
  fc.uuid().map((u) => u.toUpperCase()),
  fc.uuid().map((u) => `urn:uuid:${u}`),
);

/** A value that satisfies (or nearly satisfies) schema, so requests also get past validation. */
function plausible(schema: Schema): fc.Arbitrary<unknown> {
  if (schema.anyOf) return fc.oneof(...schema.anyOf.map(plausible));
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.const !== undefined) return fc.constant(schema.const);
  switch (schema.type) {
    case 'string':
      if (schema.format === 'email') return fc.oneof(fc.emailAddress(), fc.constant('ANN@Acme.Test'));
      if (schema.format === 'uuid') return uuidLike;
      if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
      return fc.string({
        minLength: schema.minLength ?? 0,
        maxLength: Math.min(schema.maxLength ?? 60, 300),
      });
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -(2 ** 31), max: schema.maximum ?? 2 ** 31 });
    case 'number':
      return fc.double({ noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(plausible(schema.items ?? {}), { maxLength: Math.min(schema.maxItems ?? 5, 5) });
    case 'object':
      return fc.record(
        Object.fromEntries(
          Object.entries(schema.properties ?? {}).map(([key, value]) => [key, plausible(value)]),
        ),
        { requiredKeys: schema.required ?? [] },
      );
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** An object shaped like schema where any property may hold a wrong or hostile value, plus stray keys. */
function hostileObject(schema: Schema): fc.Arbitrary<Record<string, unknown>> {
  const fields = Object.fromEntries(
    Object.entries(schema.properties ?? {}).map(([key, value]) => [
      key,
      fc.oneof(plausible(value), nastyValue),
    ]),
  );
  return fc
    .tuple(
      fc.record(fields, { requiredKeys: [] }),
      fc.dictionary(fc.string({ maxLength: 12 }), nastyValue, { maxKeys: 2 }),
    )
    .map(([known, stray]) => ({ ...stray, ...known }));
}

/** Body text with `latin1`: sent as those bytes (one per character), so not as UTF-8. */
type Payload = { contentType: string; body: string; latin1?: boolean };

const RAW = '§RAW§';

const json = (value: unknown): Payload => ({
  contentType: 'application/json',
  body: JSON.stringify(value) ?? 'null',
});

/** Whole request bodies: plausible, hostile, any JSON, prototype pollution, deep nesting, broken JSON, other types. */
function bodyOf(schema: Schema): fc.Arbitrary<Payload> {
  const pollution = fc
    .tuple(
      plausible(schema),
      fc.constantFrom(
        '"__proto__":{"role":"admin","isAdmin":true}',
        '"constructor":{"prototype":{"isAdmin":true}}',
        '"__proto__":null',
      ),
    )
    .map(([value, key]) => {
      const text = JSON.stringify(value);
      return {
        contentType: 'application/json',
        body: text === '{}' ? `{${key}}` : text.replace(/^\{/, `{${key},`),
      };
    });
  const deep = fc.tuple(fc.integer({ min: 50, max: 20_000 }), fc.boolean()).map(([depth, array]) => ({
    contentType: 'application/json',
    body: array
      ? `${'['.repeat(depth)}${']'.repeat(depth)}`
      : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
  }));
  // JSON text JSON.stringify cannot write: a lone surrogate escape, numbers that overflow to
  // Infinity, nesting past the limit, raw bytes that are not UTF-8; put where a field's value goes.
  const raw = fc
    .tuple(
      plausible(schema),
      fc.constantFrom(...Object.keys(schema.properties ?? {}), 'stray'),
      fc.constantFrom(
        '"\\ud800"',
        '"a\\udfffb"',
        '{"\\ud83d":1}',
        '1e309',
        '-1e309',
        '[[1e999]]',
        `${'['.repeat(70)}${']'.repeat(70)}`,
        '"\xed\xa0\x80"',
      ),
    )
    .map(([value, field, token]) => {
      const base = value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
      const text = JSON.stringify({ ...base, [field]: RAW }).replace(`"${RAW}"`, token);
      return { contentType: 'application/json', body: text, latin1: token.includes('\xed') };
    });
  return fc.oneof(
    { weight: 2, arbitrary: raw },
    { weight: 4, arbitrary: hostileObject(schema).map(json) },
    { weight: 3, arbitrary: plausible(schema).map(json) },
    { weight: 2, arbitrary: fc.jsonValue().map(json) },
    { weight: 1, arbitrary: pollution },
    { weight: 1, arbitrary: deep },
    {
      weight: 1,
      arbitrary: fc.string({ unit: 'binary' }).map((body) => ({ contentType: 'application/json', body })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            'application/json; charset=latin1',
            'application/merge-patch+json',
            'text/plain',
            'multipart/form-data',
          ),
          fc.string(),
        )
        .map(([contentType, body]) => ({ contentType, body })),
    },
  );
}

/** Percent-encodes every byte but the unreserved ones, so any string (lone surrogates too) fits in a URL. */
const encode = (value: string) =>
  [...Buffer.from(value, 'utf8')]
    .map((byte) =>
      /[A-Za-z0-9\-._~]/.test(String.fromCharCode(byte))
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).padStart(2, '0')}`,
    )
    .join('');

/** A path segment: any string encoded, or raw text that is not valid percent-encoding. */
function segmentOf(schema: Schema): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.oneof(plausible(schema).map(String), nastyString).map(encode) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '%',
        '%zz',
        '%E0%A4%A',
        '%c0%af',
        '%00',
        '..',
        '%2e%2e',
        '%2F',
        '*',
        ';',
        'a b',
      ),
    },
    { weight: 1, arbitrary: fc.integer({ min: 190, max: 400 }).map((n) => 'a'.repeat(n)) },
  );
}

/** A query string mixing the route's documented parameters (plausible or hostile) with stray and broken ones. */
function queryOf(parameters: Parameter[]): fc.Arbitrary<string> {
  const known = parameters.map((p) =>
    fc.tuple(fc.constant(p.name), fc.oneof(plausible(p.schema).map(String), nastyString)),
  );
  const pair = fc.oneof(...known, fc.tuple(fc.string({ maxLength: 10 }), nastyString));
  return fc.oneof(
    {
      weight: 5,
      arbitrary: fc
        .array(pair, { maxLength: 6 })
        .map((pairs) => pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&')),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '%',
        '&&==&',
        'limit=1&limit=2',
        'cursor=%zz',
        'a[b][c]=1',
        'limit',
        '=x',
        '%zz=%zz',
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map(encode) },
  );
}

const credentials: Record<string, string | undefined> = { none: undefined };

/** The failing property, stated once: below 500, and a 4xx is a problem with a code. */
function expectHandled(res: LightMyRequestResponse, request: string) {
  if (res.statusCode >= 500) throw new Error(`${request} answered ${res.statusCode}: ${res.body}`);
  if (res.statusCode >= 400) {
    expect(res.headers['content-type'], request).toMatch(/^application\/problem\+json/);
    expect(typeof res.json().code, request).toBe('string');
  }
}

const fillPath = (path: string, segment: () => string) => path.replace(/\{\w+\}/g, segment);

describe('bad input never breaks a route', () => {
  beforeAll(async () => {
    const db = t.identity.deps.db;
    await createTenant(db, {
      slug: 'acme',
      name: 'Acme',
      adminEmail: 'admin@acme.test',
      adminPassword: PASSWORD,
    });
    const passwordHash = await hashPassword(PASSWORD);
    await withTenant(db, PLATFORM_TENANT_ID, (trx) =>
      createUser(trx, {
        tenantId: PLATFORM_TENANT_ID,
        email: 'root@platform.test',
        passwordHash,
        name: 'Root',
        role: 'admin',
      }),
    );
    for (const [name, tenant, email] of [
      ['tenantAdmin', 'acme', 'admin@acme.test'],
      ['platformAdmin', 'platform', 'root@platform.test'],
    ] as const) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { tenant, email, password: PASSWORD },
      });
      expect(res.statusCode).toBe(200);
      credentials[name] = res.json().accessToken;
    }
  });
  afterAll(() => t.close());

  it('has routes to fuzz', () => {
    expect(operations.length).toBeGreaterThan(10);
  });

  // 'shopper': anonymous, naming the store with X-Tenant as a storefront does.
  const credential = fc.constantFrom('none', 'shopper', 'tenantAdmin', 'platformAdmin');
  const send = (method: string, url: string, who: string, payload?: Payload) =>
    t.app.inject({
      method: method.toUpperCase() as 'GET',
      url,
      headers: {
        ...(credentials[who] ? { authorization: `Bearer ${credentials[who]}` } : {}),
        ...(who === 'shopper' ? { 'x-tenant': 'acme' } : {}),
        ...(payload ? { 'content-type': payload.contentType } : {}),
      },
      ...(payload ? { payload: payload.latin1 ? Buffer.from(payload.body, 'latin1') : payload.body } : {}),
    });

  describe.each(operations)('$name', ({ path, method, operation }) => {
    const pathParams = (operation.parameters ?? []).filter((p) => p.in === 'path');
    const queryParams = (operation.parameters ?? []).filter((p) => p.in === 'query');

    const bodySchema = operation.requestBody?.content['application/json'].schema;
    // Only the checks that apply to this route are declared (a route without a body has no body
    // to fuzz), so none of them is counted as skipped.
    const itIf = (applies: unknown) => (applies ? it : () => {});
    itIf(bodySchema)('survives arbitrary bodies', async () => {
      await fc.assert(
        fc.asyncProperty(bodyOf(bodySchema!), credential, async (payload, who) => {
          const url = fillPath(path, () => uuidv7());
          expectHandled(
            await send(method, url, who, payload),
            `${method} ${url} as ${who} with ${payload.body.slice(0, 300)}`,
          );
        }),
        RUNS,
      );
    });

    itIf(bodySchema?.properties)('survives each hostile value in each body field', async () => {
      // One otherwise plausible body per field and value, so every value reaches past the other fields.
      const [base] = fc.sample(plausible(bodySchema!), { numRuns: 1, seed: 42 }) as [Record<string, unknown>];
      for (const field of Object.keys(bodySchema!.properties!)) {
        for (const value of NASTY_STRINGS) {
          const url = fillPath(path, () => uuidv7());
          const payload = json({ ...base, [field]: value });
          expectHandled(
            await send(method, url, 'tenantAdmin', payload),
            `${method} ${url} with ${payload.body.slice(0, 300)}`,
          );
        }
      }
    });

    itIf(pathParams.length > 0)('survives arbitrary path parameters', async () => {
      const segments = fc.record(Object.fromEntries(pathParams.map((p) => [p.name, segmentOf(p.schema)])));
      const body = bodySchema ? plausible(bodySchema).map(json) : fc.constant(undefined);
      await fc.assert(
        fc.asyncProperty(segments, body, credential, async (values, payload, who) => {
          const url = path.replace(/\{(\w+)\}/g, (_m, name: string) => values[name] ?? '');
          expectHandled(await send(method, url, who, payload), `${method} ${url} as ${who}`);
        }),
        RUNS,
      );
    });

    it('survives arbitrary query strings', async () => {
      const body = bodySchema ? plausible(bodySchema).map(json) : fc.constant(undefined);
      await fc.assert(
        fc.asyncProperty(queryOf(queryParams), body, credential, async (query, payload, who) => {
          const url = `${fillPath(path, () => uuidv7())}?${query}`;
          expectHandled(await send(method, url, who, payload), `${method} ${url} as ${who}`);
        }),
        RUNS,
      );
    });
  });
});
