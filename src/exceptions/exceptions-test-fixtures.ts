import { expect } from 'vitest';
import { type CheckoutTestApp, startCheckoutApp } from '../checkout/checkout-test-fixtures.ts';
import { createTestTenant, login, type TestTenant } from '../identity/auth/auth-test-fixtures.ts';
import { addUser, auth, send } from '../identity/users/user-test-fixtures.ts';
import type { ExceptionsModule } from './module.ts';

export type ExceptionsTestApp = CheckoutTestApp & { exceptions: ExceptionsModule };

/** The whole app as the server composes it, with the exception collector at hand. */
export async function startExceptionsApp(env: Record<string, string> = {}): Promise<ExceptionsTestApp> {
  const t = await startCheckoutApp(env);
  return Object.assign(t, {
    exceptions: t.modules.find((m) => m.name === 'exceptions') as ExceptionsModule,
  });
}

/**
 * A tenant as the collector's tests need it: its admin, an operator and a staff user (who may not
 * use the collector) signed in, and an API key with `wal:write` its external systems write
 * `interface-exceptions` with.
 */
export type OpsTenant = TestTenant & {
  admin: Record<string, string>;
  operator: Record<string, string>;
  staff: Record<string, string>;
  /** X-API-Key of a key granted wal:write (the tenant's integrations). */
  writer: Record<string, string>;
};

export async function createOpsTenant(t: ExceptionsTestApp, slug: string): Promise<OpsTenant> {
  const tenant = await createTestTenant(t, slug);
  await addUser(t, tenant.id, `operator@${slug}.test`, 'operator');
  await addUser(t, tenant.id, `staff@${slug}.test`, 'staff');
  const admin = auth((await login(t.app, slug, tenant.adminEmail)).accessToken);
  const key = await send(t.app, 'POST', '/api/v1/api-keys', admin, {
    name: 'integrations',
    permissions: ['wal:write'],
    namespaces: ['interface-exceptions'],
  });
  expect(key.statusCode, key.body).toBe(201);
  return {
    ...tenant,
    admin,
    operator: auth((await login(t.app, slug, `operator@${slug}.test`)).accessToken),
    staff: auth((await login(t.app, slug, `staff@${slug}.test`)).accessToken),
    writer: { 'x-api-key': key.json<{ key: string }>().key },
  };
}

/**
 * Writes inbound events to the tenant's `interface-exceptions` as its systems do: one message per
 * event, the CloudEvent type in the `ce-type` header, the event's data as the payload.
 */
export async function writeInbound(
  t: ExceptionsTestApp,
  tenant: OpsTenant,
  events: Array<{ type: string; data: Record<string, unknown>; headers?: Record<string, string> }>,
) {
  return send(t.app, 'POST', '/api/v1/wal/write/batch', tenant.writer, {
    namespace: 'interface-exceptions',
    messages: events.map((e) => ({ payload: e.data, headers: { 'ce-type': e.type, ...e.headers } })),
  });
}

export { send };

/** An answer over a real connection: its status, headers and body (json() parses it). */
export type HttpAnswer = {
  statusCode: number;
  headers: Headers;
  body: string;
  // biome-ignore lint/suspicious/noExplicitAny: as app.inject's answers, a test reads the JSON it expects
  json<T = any>(): T;
};

const listening = new WeakMap<object, Promise<string>>();

/**
 * Sends requests to the app over real connections (the app listens on 127.0.0.1, once; its close
 * stops it): requests sent at once are served at once, each on its own socket, as clients send them.
 */
export function overHttp(t: ExceptionsTestApp) {
  let base = listening.get(t.app);
  if (!base) {
    base = t.app.listen({ host: '127.0.0.1', port: 0 });
    listening.set(t.app, base);
  }
  const origin = base;
  return async (
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    headers: Record<string, string>,
    payload?: unknown,
  ): Promise<HttpAnswer> => {
    const response = await fetch(`${await origin}${url}`, {
      method,
      headers: payload === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
    });
    const body = await response.text();
    return { statusCode: response.status, headers: response.headers, body, json: () => JSON.parse(body) };
  };
}
