import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { addUser, bearer, send } from '../users/user-test-fixtures.ts';

let t: TestApp;
let shop: TestTenant;
let n = 0;

beforeAll(async () => {
  t = await startTestApp();
  shop = await createTestTenant(t, 'shop');
});
afterAll(() => t.close());

/** A fresh customer of the shop and their headers, so each test starts with no addresses. */
async function customer() {
  n += 1;
  await addUser(t, shop.id, `c${n}@shop.test`, 'customer');
  return bearer(t, 'shop', `c${n}@shop.test`);
}

const address = (extra: Record<string, unknown> = {}) => ({
  type: 'SHIPPING',
  recipient: 'Ann Buyer',
  line1: '1 Market St',
  city: 'San Francisco',
  region: 'CA',
  postalCode: '94105',
  country: 'US',
  ...extra,
});

type View = { id: string; type: string; isDefault: boolean; postalCode: string; country: string };
const list = async (h: Record<string, string>): Promise<View[]> =>
  (await send(t.app, 'GET', '/api/v1/users/addresses', h)).json().items;
const defaults = async (h: Record<string, string>, type = 'SHIPPING') =>
  (await list(h)).filter((a) => a.type === type && a.isDefault).map((a) => a.id);
const pointers = (body: { errors: { pointer: string }[] }) => body.errors.map((e) => e.pointer).sort();

describe('addresses', () => {
  it('adds an address in canonical form; the first of a type is its default', async () => {
    const h = await customer();
    const response = await send(
      t.app,
      'POST',
      '/api/v1/users/addresses',
      h,
      address({ country: 'ca', postalCode: 'k1a0b1', region: 'ON' }),
    );
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({
      country: 'CA',
      postalCode: 'K1A 0B1',
      isDefault: true,
      line2: null,
    });
    expect(response.headers.location).toBe(`/api/v1/users/addresses/${response.json().id}`);
    const second = await send(t.app, 'POST', '/api/v1/users/addresses', h, address());
    expect(second.json().isDefault).toBe(false);
    const billing = await send(t.app, 'POST', '/api/v1/users/addresses', h, address({ type: 'BILLING' }));
    expect(billing.json().isDefault).toBe(true);
    expect(await list(h)).toHaveLength(3);
  });

  it('lists every failing field at once: missing line1, unknown country, postal code unfit for the country', async () => {
    const h = await customer();
    const { line1: _drop, ...noLine1 } = address();
    const badCountry = await send(t.app, 'POST', '/api/v1/users/addresses', h, { ...noLine1, country: 'ZZ' });
    expect(badCountry.statusCode).toBe(400);
    expect(badCountry.json().code).toBe('VALIDATION_FAILED');
    expect(pointers(badCountry.json())).toEqual(['/country', '/line1']);
    const badPostal = await send(t.app, 'POST', '/api/v1/users/addresses', h, {
      ...noLine1,
      postalCode: 'K1A 0B1',
    });
    expect(pointers(badPostal.json())).toEqual(['/line1', '/postalCode']);
    const threeLetters = await send(t.app, 'POST', '/api/v1/users/addresses', h, address({ country: 'USA' }));
    expect(pointers(threeLetters.json())).toEqual(['/country']);
    const badType = await send(
      t.app,
      'POST',
      '/api/v1/users/addresses',
      h,
      address({ type: 'HOME', phone: '12' }),
    );
    expect(pointers(badType.json())).toEqual(['/phone', '/type']);
    expect(await list(h)).toHaveLength(0);
  });

  it('updates some fields, checking a new country against the stored postal code', async () => {
    const h = await customer();
    const created = (await send(t.app, 'POST', '/api/v1/users/addresses', h, address())).json();
    const url = `/api/v1/users/addresses/${created.id}`;
    const renamed = await send(t.app, 'PUT', url, h, { recipient: 'Bo', line2: 'Suite 5' });
    expect(renamed.statusCode).toBe(200);
    expect(renamed.json()).toMatchObject({
      recipient: 'Bo',
      line2: 'Suite 5',
      line1: '1 Market St',
      postalCode: '94105',
    });
    const toCanada = await send(t.app, 'PUT', url, h, { country: 'CA' });
    expect(toCanada.statusCode).toBe(400);
    expect(pointers(toCanada.json())).toEqual(['/postalCode', '/region']);
    const toGermany = await send(t.app, 'PUT', url, h, { country: 'DE', city: 'Berlin', region: null });
    expect(toGermany.json()).toMatchObject({
      country: 'DE',
      city: 'Berlin',
      region: null,
      postalCode: '94105',
    });
    const cleared = await send(t.app, 'PUT', url, h, { line2: null });
    expect(cleared.json().line2).toBeNull();
  });

  it('keeps one default per type: setting a default unsets the other', async () => {
    const h = await customer();
    const a = (await send(t.app, 'POST', '/api/v1/users/addresses', h, address())).json();
    const b = (await send(t.app, 'POST', '/api/v1/users/addresses', h, address())).json();
    const bill = (
      await send(t.app, 'POST', '/api/v1/users/addresses', h, address({ type: 'BILLING' }))
    ).json();
    expect(await defaults(h)).toEqual([a.id]);
    const made = await send(t.app, 'PUT', `/api/v1/users/addresses/${b.id}`, h, { isDefault: true });
    expect(made.json().isDefault).toBe(true);
    expect(await defaults(h)).toEqual([b.id]);
    expect(await defaults(h, 'BILLING')).toEqual([bill.id]);
    const c = (await send(t.app, 'POST', '/api/v1/users/addresses', h, address({ isDefault: true }))).json();
    expect(c.isDefault).toBe(true);
    expect(await defaults(h)).toEqual([c.id]);
  });

  it('hands the default on when it is unset or moved to the other type', async () => {
    const h = await customer();
    const a = (await send(t.app, 'POST', '/api/v1/users/addresses', h, address())).json();
    const b = (await send(t.app, 'POST', '/api/v1/users/addresses', h, address())).json();
    await send(t.app, 'PUT', `/api/v1/users/addresses/${a.id}`, h, { isDefault: false });
    expect(await defaults(h)).toEqual([b.id]);
    const moved = await send(t.app, 'PUT', `/api/v1/users/addresses/${b.id}`, h, { type: 'BILLING' });
    expect(moved.json()).toMatchObject({ type: 'BILLING', isDefault: true });
    expect(await defaults(h)).toEqual([a.id]);
    const alone = await send(t.app, 'PUT', `/api/v1/users/addresses/${a.id}`, h, { isDefault: false });
    expect(alone.json().isDefault).toBe(true);
  });

  it('hands the default on when it is unset through an id spelt in capitals', async () => {
    const h = await customer();
    const older = (await send(t.app, 'POST', '/api/v1/users/addresses', h, address())).json();
    const newer = (
      await send(t.app, 'POST', '/api/v1/users/addresses', h, address({ isDefault: true }))
    ).json();
    const url = `/api/v1/users/addresses/${newer.id.toUpperCase()}`;
    const unset = await send(t.app, 'PUT', url, h, { isDefault: false });
    expect(unset.statusCode).toBe(200);
    expect(unset.json().isDefault).toBe(false);
    expect(await defaults(h)).toEqual([older.id]);
  });

  it('makes exactly one default when two defaults are created at once', async () => {
    const h = await customer();
    const answers = await Promise.all(
      Array.from({ length: 4 }, () =>
        send(t.app, 'POST', '/api/v1/users/addresses', h, address({ isDefault: true })),
      ),
    );
    expect(answers.map((a) => a.statusCode)).toEqual([201, 201, 201, 201]);
    expect(await defaults(h)).toHaveLength(1);
    const firsts = await customer();
    await Promise.all([
      send(t.app, 'POST', '/api/v1/users/addresses', firsts, address()),
      send(t.app, 'POST', '/api/v1/users/addresses', firsts, address()),
    ]);
    expect(await defaults(firsts)).toHaveLength(1);
  });

  it('promotes the most recent other address of the type when the default is deleted', async () => {
    const h = await customer();
    const a = (await send(t.app, 'POST', '/api/v1/users/addresses', h, address())).json();
    const b = (await send(t.app, 'POST', '/api/v1/users/addresses', h, address())).json();
    const c = (await send(t.app, 'POST', '/api/v1/users/addresses', h, address())).json();
    const deleted = await send(t.app, 'DELETE', `/api/v1/users/addresses/${a.id}`, h);
    expect(deleted.statusCode).toBe(204);
    expect(deleted.body).toBe('');
    expect(await defaults(h)).toEqual([c.id]);
    expect((await send(t.app, 'GET', `/api/v1/users/addresses/${a.id}`, h)).statusCode).toBe(404);
    await send(t.app, 'DELETE', `/api/v1/users/addresses/${b.id}`, h);
    expect(await defaults(h)).toEqual([c.id]);
    expect((await send(t.app, 'DELETE', `/api/v1/users/addresses/${a.id}`, h)).statusCode).toBe(404);
  });

  it("answers 404, never 403, for another user's address, and changes nothing", async () => {
    const owner = await customer();
    const other = await customer();
    const theirs = (await send(t.app, 'POST', '/api/v1/users/addresses', owner, address())).json();
    const url = `/api/v1/users/addresses/${theirs.id}`;
    expect((await send(t.app, 'GET', url, other)).statusCode).toBe(404);
    expect((await send(t.app, 'PUT', url, other, { recipient: 'Mallory' })).statusCode).toBe(404);
    expect((await send(t.app, 'DELETE', url, other)).statusCode).toBe(404);
    expect((await send(t.app, 'GET', url, owner)).json()).toMatchObject({ recipient: 'Ann Buyer' });
    expect(await list(other)).toHaveLength(0);
  });

  it('answers 400 for a malformed id and 401 without a credential', async () => {
    const h = await customer();
    expect((await send(t.app, 'GET', '/api/v1/users/addresses/42', h)).statusCode).toBe(400);
    expect((await send(t.app, 'PUT', '/api/v1/users/addresses/42', h, { city: 'X' })).statusCode).toBe(400);
    expect((await send(t.app, 'POST', '/api/v1/users/addresses', {}, address())).statusCode).toBe(401);
  });
});
