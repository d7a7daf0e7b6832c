import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { addUser, bearer, send } from '../users/user-test-fixtures.ts';

let t: TestApp;
let shop: TestTenant;
let n = 0;

beforeAll(async () => {
  t = await startTestApp();
  shop = await createTestTenant(t, 'regionshop');
});
afterAll(() => t.close());

async function customer() {
  n += 1;
  await addUser(t, shop.id, `r${n}@regionshop.test`, 'customer');
  return bearer(t, 'regionshop', `r${n}@regionshop.test`);
}

const boston = (extra: Record<string, unknown> = {}) => ({
  type: 'SHIPPING',
  recipient: 'Ann Buyer',
  line1: '1 Beacon St',
  city: 'Boston',
  region: 'MA',
  postalCode: '02108',
  country: 'US',
  ...extra,
});

type Problem = { code: string; errors: { pointer: string; message: string }[] };
const problemOf = (response: { statusCode: number; headers: Record<string, unknown>; json(): unknown }) => {
  expect(response.statusCode).toBe(400);
  expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
  const problem = response.json() as Problem;
  expect(problem.code).toBe('VALIDATION_FAILED');
  return problem.errors;
};
const add = (h: Record<string, string>, body: Record<string, unknown>) =>
  send(t.app, 'POST', '/api/v1/users/addresses', h, body);

describe("an address book's region in the United States, Canada or Australia", () => {
  it('is stored as its ISO 3166-2 code, whether sent as its name or code, in any case', async () => {
    const h = await customer();
    const named = await add(h, boston({ region: ' massachusetts ' }));
    expect(named.statusCode, named.body).toBe(201);
    expect(named.json()).toMatchObject({ region: 'MA' });
    const quebec = await add(h, boston({ region: 'QUÉBEC', country: 'CA', postalCode: 'H2X 1Y4' }));
    expect(quebec.json()).toMatchObject({ region: 'QC' });
    const sydney = await add(h, boston({ region: 'nsw', country: 'AU', postalCode: '2000' }));
    expect(sydney.json()).toMatchObject({ region: 'NSW' });
  });

  it('is refused with 400 at /region when it is none of the country’s ("Mass.")', async () => {
    const h = await customer();
    const errors = problemOf(await add(h, boston({ region: 'Mass.' })));
    expect(errors.map((e) => e.pointer)).toEqual(['/region']);
    expect(errors[0]!.message).toContain('US');
    expect((await send(t.app, 'GET', '/api/v1/users/addresses', h)).json().items).toEqual([]);
  });

  it('is required: missing, null or blank is 400 at /region naming the country', async () => {
    const h = await customer();
    const { region: _none, ...missing } = boston();
    for (const body of [missing, boston({ region: null }), boston({ region: '  ' })]) {
      const errors = problemOf(await add(h, body));
      expect(errors).toEqual([{ in: 'body', pointer: '/region', message: 'is required in US' }]);
    }
    const errors = problemOf(await add(h, boston({ country: 'AU', postalCode: '2000', region: null })));
    expect(errors.map((e) => e.message)).toEqual(['is required in AU']);
  });

  it('is re-checked against the new country when a PUT changes only the country', async () => {
    const h = await customer();
    const saved = (await add(h, boston({ postalCode: '20500', region: 'DC' }))).json<{ id: string }>();
    const url = `/api/v1/users/addresses/${saved.id}`;
    // 20500 fits no Canadian postal code either; the region is checked against CA all the same.
    const toCanada = problemOf(await send(t.app, 'PUT', url, h, { country: 'CA' }));
    expect(toCanada.map((e) => e.pointer).sort()).toEqual(['/postalCode', '/region']);
    const toAustralia = problemOf(await send(t.app, 'PUT', url, h, { country: 'AU', postalCode: '2000' }));
    expect(toAustralia.map((e) => e.pointer)).toEqual(['/region']);
    const cleared = problemOf(await send(t.app, 'PUT', url, h, { region: null }));
    expect(cleared.map((e) => e.message)).toEqual(['is required in US']);
    const renamed = await send(t.app, 'PUT', url, h, { region: 'new york', postalCode: '10001' });
    expect(renamed.json()).toMatchObject({ region: 'NY', postalCode: '10001' });
    const moved = await send(t.app, 'PUT', url, h, { country: 'AU', postalCode: '2000', region: 'Victoria' });
    expect(moved.json()).toMatchObject({ country: 'AU', region: 'VIC' });
  });
});

describe("an address book's region elsewhere", () => {
  it('stays free text, trimmed, and may be left out', async () => {
    const h = await customer();
    const bavaria = await add(h, boston({ country: 'DE', postalCode: '80331', region: ' Bayern ' }));
    expect(bavaria.json()).toMatchObject({ region: 'Bayern' });
    const { region: _none, ...missing } = boston({ country: 'DE', postalCode: '10115' });
    expect((await add(h, missing)).json()).toMatchObject({ region: null });
    const url = `/api/v1/users/addresses/${bavaria.json<{ id: string }>().id}`;
    // Moving a German address to the US takes a region of the US: "Bayern" is none.
    const errors = problemOf(await send(t.app, 'PUT', url, h, { country: 'US', postalCode: '02108' }));
    expect(errors.map((e) => e.pointer)).toEqual(['/region']);
  });
});
