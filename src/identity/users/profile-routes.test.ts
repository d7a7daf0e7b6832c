import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant } from '../auth/auth-test-fixtures.ts';
import { addUser, bearer, send } from './user-test-fixtures.ts';

let t: TestApp;
let headers: Record<string, string>;

beforeAll(async () => {
  t = await startTestApp();
  const shop = await createTestTenant(t, 'shop');
  await addUser(t, shop.id, 'ann@shop.test', 'customer');
  headers = await bearer(t, 'shop', 'ann@shop.test');
});
afterAll(() => t.close());

describe('profile', () => {
  it('shows the signed-in user without the password hash', async () => {
    const response = await send(t.app, 'GET', '/api/v1/users/profile', headers);
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ email: 'ann@shop.test', role: 'customer', status: 'active', phone: null });
    expect(JSON.stringify(body)).not.toMatch(/password|argon/i);
  });

  it('answers 401 without a credential', async () => {
    const response = await send(t.app, 'GET', '/api/v1/users/profile', {});
    expect(response.statusCode).toBe(401);
    expect(response.headers['content-type']).toContain('application/problem+json');
  });

  it('changes name and phone, and clears the phone with null', async () => {
    const set = await send(t.app, 'PUT', '/api/v1/users/profile', headers, {
      name: 'Ann B',
      phone: '+14155550123',
    });
    expect(set.statusCode).toBe(200);
    expect(set.json()).toMatchObject({ name: 'Ann B', phone: '+14155550123' });
    const cleared = await send(t.app, 'PUT', '/api/v1/users/profile', headers, { phone: null });
    expect(cleared.json()).toMatchObject({ name: 'Ann B', phone: null });
    const read = await send(t.app, 'GET', '/api/v1/users/profile', headers);
    expect(read.json()).toMatchObject({ name: 'Ann B', phone: null });
  });

  it('rejects a phone that is not E.164 and an empty name, naming each', async () => {
    const response = await send(t.app, 'PUT', '/api/v1/users/profile', headers, {
      name: '',
      phone: '555-0123',
    });
    expect(response.statusCode).toBe(400);
    const pointers = response.json().errors.map((e: { pointer: string }) => e.pointer);
    expect(pointers).toEqual(expect.arrayContaining(['/name', '/phone']));
  });
});
