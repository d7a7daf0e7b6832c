import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { bearer, send } from '../../identity/users/user-test-fixtures.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createWal } from '../index.ts';
import { addNamespace } from '../write/write-test-fixtures.ts';
import type { Namespace } from './namespace.ts';
import {
  checkPayloadSchema,
  MAX_LISTED_ERRORS,
  MAX_PATTERN_LENGTH,
  MAX_PAYLOAD_SCHEMA_BYTES,
  MAX_SCHEMA_PATTERN_PROGRAM,
  namespaceValidator,
  toRe2Syntax,
} from './payload-schema.ts';
import { largestRepeat } from './payload-schema-regexp.ts';

const NS = '/api/v1/wal/namespaces';
const WRITE = '/api/v1/wal/write';
type Problem = { code: string; errors?: { pointer: string; message: string }[] };

describe('namespace payload schemas', () => {
  let t: TestApp;
  let shop: TestTenant;
  let admin: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp({}, { modules: async (ctx) => [await createWal(ctx)] });
    shop = await createTestTenant(t, 'schemashop');
    admin = await bearer(t, shop.slug, shop.adminEmail);
  });
  afterAll(() => t?.close());

  const create = (body: Record<string, unknown>) => post(t.app, NS, body, admin);
  const write = (namespace: string, payload: unknown) => post(t.app, WRITE, { namespace, payload }, admin);
  const problem = (res: { statusCode: number; body: string; json: () => unknown }, status: number) => {
    expect(res.statusCode, res.body).toBe(status);
    return res.json() as Problem;
  };

  it('answers a write against a catastrophic-backtracking pattern with 422 at once', async () => {
    const payloadSchema = {
      type: 'object',
      properties: { name: { type: 'string', pattern: '^(a+)+$' } },
    };
    expect((await create({ name: 'redos', payloadSchema })).statusCode).toBe(201);
    // A backtracking engine needs about 2^40 steps for this one; RE2 needs 41.
    const hostile = `${'a'.repeat(40)}!`;
    const body = problem(await write('redos', { name: hostile }), 422);
    expect(body.code).toBe('PAYLOAD_SCHEMA_MISMATCH');
    expect(body.errors?.map((e) => e.pointer)).toEqual(['/payload/name']);
    expect((await write('redos', { name: 'a'.repeat(40) })).statusCode).toBe(202);
  });

  it('runs patternProperties on the linear-time engine too', async () => {
    const payloadSchema = {
      type: 'object',
      patternProperties: { '^(a|aa)+$': { type: 'integer' } },
      additionalProperties: false,
    };
    expect((await create({ name: 'redos.keys', payloadSchema })).statusCode).toBe(201);
    const body = problem(await write('redos.keys', { [`${'a'.repeat(60)}!`]: 1 }), 422);
    expect(body.code).toBe('PAYLOAD_SCHEMA_MISMATCH');
    expect((await write('redos.keys', { aaaa: 1 })).statusCode).toBe(202);
  });

  it('stops a schema whose subschemas fan out with 422 instead of running for hours', async () => {
    // Each level tries both branches on the same value: 2^40 subschema applications on old code.
    const definitions: Record<string, unknown> = { a40: { type: 'string' } };
    for (let i = 0; i < 40; i++) {
      const next = { $ref: `#/definitions/a${i + 1}` };
      definitions[`a${i}`] = { anyOf: [next, next] };
    }
    const payloadSchema = {
      type: 'object',
      properties: { total: { $ref: '#/definitions/a0' } },
      definitions,
    };
    expect((await create({ name: 'fanout', payloadSchema })).statusCode).toBe(201);
    const body = problem(await write('fanout', { total: 1 }), 422);
    expect(body.code).toBe('PAYLOAD_SCHEMA_MISMATCH');
    expect(body.errors?.[0]).toMatchObject({
      pointer: '/payload',
      message: expect.stringMatching(/too many steps/),
    });
    expect((await write('fanout', { total: 'ok' })).statusCode).toBe(202);
  });

  it('checks uniqueItems of a long array of objects in one pass', async () => {
    const payloadSchema = { type: 'array', uniqueItems: true };
    const created = await create({ name: 'unique', payloadSchema, maxPayloadBytes: 4_000_000 });
    expect(created.statusCode, created.body).toBe(201);
    // Pairwise comparison of 40,000 objects is 800 million deep comparisons (minutes).
    const items = Array.from({ length: 40_000 }, (_, i) => ({ id: i }));
    expect((await write('unique', items)).statusCode).toBe(202);
    const body = problem(await write('unique', [...items, { id: 7 }]), 422);
    expect(body.errors?.[0]?.message).toMatch(/duplicate items \(items ## 40000 and 7/);
    expect(
      (
        await write('unique', [
          { a: 1, b: [2] },
          { b: [2], a: 1 },
        ])
      ).statusCode,
    ).toBe(422);
  });

  it('checks formats in linear time: a long hostile "url" answers 422 at once', async () => {
    const payloadSchema = { type: 'object', properties: { site: { type: 'string', format: 'url' } } };
    const created = await create({ name: 'urls', payloadSchema, maxPayloadBytes: 1_000_000 });
    expect(created.statusCode, created.body).toBe(201);
    // ajv-formats' url expression is quadratic: 200,000 characters take minutes there.
    const body = problem(await write('urls', { site: `http://${'::'.repeat(100_000)}@` }), 422);
    expect(body.errors?.map((e) => e.pointer)).toEqual(['/payload/site']);
    expect((await write('urls', { site: 'https://shop.example/orders?id=42' })).statusCode).toBe(202);
    expect((await write('urls', { site: 'not a url' })).statusCode).toBe(422);
    expect((await write('urls', { site: 'mailto:someone@example.com' })).statusCode).toBe(422);
  });

  it('keeps ECMAScript \\u escapes working in patterns', async () => {
    const payloadSchema = { type: 'string', pattern: '^[\\u0041-\\u005A]+\\u{1F600}?$' };
    expect((await create({ name: 'escapes', payloadSchema })).statusCode).toBe(201);
    expect((await write('escapes', 'ABC😀')).statusCode).toBe(202);
    expect((await write('escapes', 'abc')).statusCode).toBe(422);
    expect(toRe2Syntax('\\uD83D\\uDE00\\\\u0041')).toBe('\\x{1f600}\\\\u0041');
  });

  it('refuses a schema over 64 KiB with 400 naming /payloadSchema', async () => {
    const payloadSchema = { type: 'object', description: 'x'.repeat(MAX_PAYLOAD_SCHEMA_BYTES) };
    const body = problem(await create({ name: 'huge', payloadSchema }), 400);
    expect(body.code).toBe('VALIDATION_FAILED');
    expect(body.errors?.map((e) => e.pointer)).toEqual(['/payloadSchema']);
    expect(body.errors?.[0]?.message).toMatch(/at most 65536 bytes/);
  });

  it('refuses a backreference or a lookahead with 400 naming where the pattern is', async () => {
    const backreference = problem(
      await create({
        name: 'backref',
        payloadSchema: { type: 'object', properties: { code: { type: 'string', pattern: '^(a)\\1$' } } },
      }),
      400,
    );
    expect(backreference.code).toBe('VALIDATION_FAILED');
    expect(backreference.errors?.map((e) => e.pointer)).toEqual(['/payloadSchema/properties/code/pattern']);
    expect(backreference.errors?.[0]?.message).toMatch(/no backreferences or lookaround/);

    expect((await create({ name: 'later', payloadSchema: { type: 'object' } })).statusCode).toBe(201);
    const lookahead = problem(
      await send(t.app, 'PUT', `${NS}/later`, admin, {
        payloadSchema: { patternProperties: { '^(?=x)a/b$': {} } },
      }),
      400,
    );
    expect(lookahead.errors?.map((e) => e.pointer)).toEqual(['/payloadSchema/patternProperties/^(?=x)a~1b$']);
  });

  it('refuses a pattern whose counted repetition compiles to a huge program with 400 naming it', async () => {
    // 19 characters, 11,003 RE2 instructions: one write of 20 KB took 3.7 s before its 422.
    const repeated = problem(
      await create({
        name: 'repeat',
        payloadSchema: {
          type: 'object',
          properties: { name: { type: 'string', pattern: '(a|aa|aaa|b){1000}$' } },
        },
      }),
      400,
    );
    expect(repeated.code).toBe('VALIDATION_FAILED');
    expect(repeated.errors?.map((e) => e.pointer)).toEqual(['/payloadSchema/properties/name/pattern']);
    expect(repeated.errors?.[0]?.message).toMatch(/repeats 1000 times.*at most 100/);

    // Counts within bounds that multiply: 1,123 instructions.
    expect((await create({ name: 'nested', payloadSchema: { type: 'object' } })).statusCode).toBe(201);
    const nested = problem(
      await send(t.app, 'PUT', `${NS}/nested`, admin, {
        payloadSchema: { patternProperties: { '((a|aa|aaa|b){10}){10}$': {} } },
      }),
      400,
    );
    expect(nested.errors?.map((e) => e.pointer)).toEqual([
      '/payloadSchema/patternProperties/((a|aa|aaa|b){10}){10}$',
    ]);
    expect(nested.errors?.[0]?.message).toMatch(/1123 RE2 instructions, at most 1000/);

    const long = problem(
      await create({
        name: 'long',
        payloadSchema: { type: 'string', pattern: 'x'.repeat(MAX_PATTERN_LENGTH + 1) },
      }),
      400,
    );
    expect(long.errors?.map((e) => e.pointer)).toEqual(['/payloadSchema/pattern']);

    // Patterns each within bounds, too many of them together.
    const many = Array.from({ length: 25 }, () => ({ pattern: '(?:[ab]*a[ab]{100}){9}$' }));
    const together = problem(await create({ name: 'many', payloadSchema: { allOf: many } }), 400);
    expect(together.errors?.map((e) => e.pointer)).toEqual(['/payloadSchema']);
    expect(together.errors?.[0]?.message).toMatch(new RegExp(`at most ${MAX_SCHEMA_PATTERN_PROGRAM}`));
  });

  it('reads counted repetitions as RE2 does: not in classes, escapes or literal braces', () => {
    expect(largestRepeat('^[a-z]{2,64}x{3,}$')).toBe(64);
    expect(largestRepeat('[{1000}]\\{1000}\\x{1F600}\\p{Greek}{,1000}a{1000')).toBe(0);
    expect(largestRepeat('[[:alpha:]{]{101}')).toBe(101);
  });

  it('stops an allowed pattern that is costly over a 200 KB string with 422 instead of running for seconds', async () => {
    // 930 instructions, within every bound; RE2 needs about 2.5 s per test over 200,000 random
    // a/b characters: 14 tests of one value took 35 s on old code.
    const costly = { pattern: '(?:[ab]*a[ab]{100}){9}$' };
    const payloadSchema = { type: 'object', properties: { s: { allOf: Array(14).fill(costly) } } };
    const created = await create({ name: 'costly', payloadSchema, maxPayloadBytes: 1_000_000 });
    expect(created.statusCode, created.body).toBe(201);
    let seed = 12_345;
    const random = Array.from({ length: 200_000 }, () => {
      seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
      return (seed >> 16) & 1 ? 'a' : 'b';
    }).join('');
    const body = problem(await write('costly', { s: random }), 422);
    expect(body.code).toBe('PAYLOAD_SCHEMA_MISMATCH');
    expect(body.errors?.[0]?.message).toMatch(/too many steps/);
    // A short value is matched (and fails) as before.
    const short = problem(await write('costly', { s: 'b' }), 422);
    expect(short.errors?.[0]?.pointer).toBe('/payload/s');

    // An ordinary pattern over the same 200 KB string stays within the budget.
    const plain = { type: 'object', properties: { s: { type: 'string', pattern: '^[ab]*$' } } };
    expect(
      (await create({ name: 'plain', payloadSchema: plain, maxPayloadBytes: 1_000_000 })).statusCode,
    ).toBe(201);
    expect((await write('plain', { s: random })).statusCode).toBe(202);
  });

  it('answers writes 409 CONFLICT for a stored schema that no longer compiles', async () => {
    const payloadSchema = { type: 'string', pattern: '^(?!admin)' };
    await addNamespace(t, shop.id, 'legacy', { payload_schema: JSON.stringify(payloadSchema) });
    for (let i = 0; i < 2; i++) {
      const body = problem(await write('legacy', 'guest'), 409);
      expect(body.code).toBe('CONFLICT');
    }
  });

  it('refuses an $async schema, which would pass every payload and reject the failing ones unhandled', async () => {
    const payloadSchema = { $async: true, type: 'string' };
    const body = problem(await create({ name: 'async', payloadSchema }), 400);
    expect(body.code).toBe('VALIDATION_FAILED');
    expect(body.errors?.map((e) => e.pointer)).toEqual(['/payloadSchema']);
    // One stored before this rule answers writes 409, as any schema that no longer compiles.
    await addNamespace(t, shop.id, 'async-legacy', { payload_schema: JSON.stringify(payloadSchema) });
    expect(problem(await write('async-legacy', 1), 409).code).toBe('CONFLICT');
  });

  it('compiles a namespace’s schema once per version, not per write', () => {
    const namespace = {
      tenantId: shop.id,
      name: 'versioned',
      payloadSchema: { type: 'string' },
      updatedAt: '2026-01-01T00:00:00.000Z',
    } as unknown as Namespace;
    // Each request gets its own budgeted validator around the one compiled function.
    const first = namespaceValidator(namespace)?.schema;
    expect(namespaceValidator({ ...namespace, payloadSchema: { type: 'string' } })?.schema).toBe(first);
    const changed = namespaceValidator({
      ...namespace,
      payloadSchema: { type: 'integer' },
      updatedAt: 'later',
    });
    expect(changed?.schema).not.toBe(first);
    expect(changed?.(1)).toBe(true);
  });

  it("keeps no tenant's $id: the same id, written another way, is accepted again", () => {
    expect(checkPayloadSchema({ $id: 'https://ids.example/order#', type: 'object' })).toEqual([]);
    expect(checkPayloadSchema({ $id: 'https://ids.example/order', type: 'string' })).toEqual([]);
  });

  it('lists the first error of a large failing payload, not one per wrong item, and at most 100 per request', async () => {
    // Every error was kept: a million wrong items were a million errors (170 MB) and as many in the 422.
    const payloadSchema = { type: 'array', items: { type: 'string' } };
    expect((await create({ name: 'listing', payloadSchema, maxPayloadBytes: 1_048_576 })).statusCode).toBe(
      201,
    );
    const large = problem(await write('listing', new Array(200_000).fill(0)), 422);
    expect(large.code).toBe('PAYLOAD_SCHEMA_MISMATCH');
    expect(large.errors).toEqual([{ in: 'body', pointer: '/payload/0', message: 'must be string' }]);
    // A small payload still has every error listed, one per pointer.
    const small = problem(await write('listing', [0, 'a', 0]), 422);
    expect(small.errors?.map((e) => e.pointer)).toEqual(['/payload/0', '/payload/2']);
    // A batch of many small failing payloads lists at most MAX_LISTED_ERRORS.
    const messages = Array.from({ length: 1000 }, () => ({ payload: new Array(50).fill(0) }));
    const batch = problem(
      await post(t.app, `${WRITE}/batch`, { namespace: 'listing', messages }, admin),
      422,
    );
    expect(batch.errors?.length).toBe(MAX_LISTED_ERRORS);
  });

  it('answers a payload with a schema error, not a 500, when the schema applies itself without end', () => {
    const namespace = {
      tenantId: shop.id,
      name: 'self-applying',
      payloadSchema: { $defs: { a: { allOf: [{ $ref: '#/$defs/a' }] } }, $ref: '#/$defs/a' },
      updatedAt: '2026-01-01T00:00:00.000Z',
    } as unknown as Namespace;
    const validate = namespaceValidator(namespace)!;
    expect(validate({ a: 1 })).toBe(false);
    expect(validate.errors?.[0]?.message).toMatch(/too many steps/);
  });
});
