import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant, PASSWORD, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { addUser, bearer, send } from './user-test-fixtures.ts';

let t: TestApp;
let shop: TestTenant;
let other: TestTenant;
let customer: Record<string, string>;
let admin: Record<string, string>;

beforeAll(async () => {
  t = await startTestApp();
  shop = await createTestTenant(t, 'shop');
  other = await createTestTenant(t, 'other');
  await addUser(t, shop.id, 'cus@shop.test', 'customer');
  customer = await bearer(t, 'shop', 'cus@shop.test');
  admin = await bearer(t, 'shop', shop.adminEmail);
});
afterAll(() => t.close());

const ID = '01900000-0000-7000-8000-0000000000aa';
const smuggled = () => ({ role: 'admin', tenantId: other.id, id: ID });

/** Expects a 400 VALIDATION_FAILED whose errors name the field. */
function expectRejected(response: { statusCode: number; json(): unknown }, field: string) {
  expect(response.statusCode, field).toBe(400);
  const body = response.json() as { code: string; errors: { pointer: string }[] };
  expect(body.code).toBe('VALIDATION_FAILED');
  expect(body.errors.map((e) => e.pointer)).toContain(`/${field}`);
}

const address = {
  type: 'BILLING',
  recipient: 'Cus',
  line1: '1 Main St',
  city: 'Berlin',
  postalCode: '10115',
  country: 'DE',
};

describe('mass assignment', () => {
  it('register rejects role, tenantId and id, and creates no account', async () => {
    for (const [field, value] of Object.entries(smuggled())) {
      const body = {
        tenant: 'shop',
        email: `reg-${field}@shop.test`,
        password: PASSWORD,
        name: 'Reg',
        [field]: value,
      };
      expectRejected(await send(t.app, 'POST', '/api/v1/auth/register', {}, body), field);
    }
    const users = (await send(t.app, 'GET', '/api/v1/users?limit=100', admin)).json().items;
    expect(users.map((u: { email: string }) => u.email).filter((e: string) => e.startsWith('reg-'))).toEqual(
      [],
    );
  });

  it('profile PUT rejects email, role, tenantId, id and status, and changes nothing', async () => {
    const before = (await send(t.app, 'GET', '/api/v1/users/profile', customer)).json();
    for (const [field, value] of Object.entries({
      ...smuggled(),
      email: 'boss@shop.test',
      status: 'active',
    })) {
      const response = await send(t.app, 'PUT', '/api/v1/users/profile', customer, {
        name: 'Hacker',
        [field]: value,
      });
      expectRejected(response, field);
    }
    expect((await send(t.app, 'GET', '/api/v1/users/profile', customer)).json()).toEqual(before);
  });

  it('staff POST rejects tenantId, id and status, and creates no account', async () => {
    for (const [field, value] of Object.entries({ tenantId: other.id, id: ID, status: 'disabled' })) {
      const body = {
        email: `staff-${field}@shop.test`,
        password: PASSWORD,
        name: 'S',
        role: 'staff',
        [field]: value,
      };
      expectRejected(await send(t.app, 'POST', '/api/v1/users', admin, body), field);
    }
    const users = (await send(t.app, 'GET', '/api/v1/users?limit=100', admin)).json().items;
    expect(
      users.map((u: { email: string }) => u.email).filter((e: string) => e.startsWith('staff-')),
    ).toEqual([]);
  });

  it('address POST and PUT reject tenantId, userId and id, and change nothing', async () => {
    const fields = { tenantId: other.id, userId: shop.adminId, id: ID };
    for (const [field, value] of Object.entries(fields)) {
      expectRejected(
        await send(t.app, 'POST', '/api/v1/users/addresses', customer, { ...address, [field]: value }),
        field,
      );
    }
    const created = (await send(t.app, 'POST', '/api/v1/users/addresses', customer, address)).json();
    for (const [field, value] of Object.entries(fields)) {
      const response = await send(t.app, 'PUT', `/api/v1/users/addresses/${created.id}`, customer, {
        city: 'Hamburg',
        [field]: value,
      });
      expectRejected(response, field);
    }
    const items = (await send(t.app, 'GET', '/api/v1/users/addresses', customer)).json().items;
    expect(items).toEqual([created]);
  });
});
