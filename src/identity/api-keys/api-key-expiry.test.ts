import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { createTestTenant, type TestTenant } from '../auth/auth-test-fixtures.ts';
import { bearer, send } from '../users/user-test-fixtures.ts';
import { API_KEY_CACHE_MS } from './index.ts';

// Keys may be made to expire (as GitHub's fine-grained tokens and Stripe's restricted keys): past
// its expiresAt a key is refused exactly as a revoked one, in a process that cached it too.
let t: TestApp;
let shop: TestTenant;
let admin: Record<string, string>;

beforeAll(async () => {
  t = await startTestApp();
  shop = await createTestTenant(t, 'key-expiry');
  admin = await bearer(t, shop.slug, shop.adminEmail);
});
afterAll(() => t.close());
afterEach(() => {
  vi.useRealTimers();
});

const KEYS = '/api/v1/api-keys';
type Created = { id: string; key: string; expiresAt: string | null };
const create = (body: Record<string, unknown>) =>
  send(t.app, 'POST', KEYS, admin, { name: 'integration', permissions: ['users:read'], ...body });
const created = async (body: Record<string, unknown>) => {
  const answer = await create(body);
  expect(answer.statusCode, answer.body).toBe(201);
  return answer.json<Created>();
};
const use = (key: string) => send(t.app, 'GET', '/api/v1/users', { 'x-api-key': key });
const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();
/** Freezes Date (only Date: timers and I/O run on), so the lookup cache's age is the test's to set. */
const freezeDate = () => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(Date.now());
};
const advance = (ms: number) => vi.setSystemTime(Date.now() + ms);

describe('POST /api-keys with expiresAt', () => {
  it('stores the expiry, shows it on creation and in the list; a key without one shows null', async () => {
    const at = inMs(30 * 86_400_000);
    const expiring = await created({ expiresAt: at });
    expect(expiring.expiresAt).toBe(at);
    const lasting = await created({});
    expect(lasting.expiresAt).toBeNull();
    expect((await created({ expiresAt: null })).expiresAt).toBeNull();
    const listed = await send(t.app, 'GET', KEYS, admin);
    const items = listed.json<{ items: { id: string; expiresAt: string | null }[] }>().items;
    expect(items.find((k) => k.id === expiring.id)?.expiresAt).toBe(at);
    expect(items.find((k) => k.id === lasting.id)?.expiresAt).toBeNull();
  });

  it('refuses a past, invalid or too distant expiry with 400 VALIDATION_FAILED naming /expiresAt', async () => {
    const elevenYears = new Date();
    elevenYears.setUTCFullYear(elevenYears.getUTCFullYear() + 11);
    for (const expiresAt of [
      inMs(-60_000),
      '2020-01-01T00:00:00Z',
      'tomorrow',
      '2031-02-30T00:00:00Z',
      '2031-01-01T00:00:00',
      elevenYears.toISOString(),
      1_900_000_000,
    ]) {
      const answer = await create({ expiresAt });
      expect(answer.statusCode, `${expiresAt}: ${answer.body}`).toBe(400);
      expect(answer.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
      expect(answer.json().errors.map((e: { pointer: string }) => e.pointer)).toContain('/expiresAt');
    }
  });
});

describe('an expired API key', () => {
  it('is refused exactly as a revoked key is', async () => {
    const expired = await created({ expiresAt: inMs(86_400_000) });
    await withTenant(t.identity.deps.db, shop.id, (trx) =>
      sql`update identity.api_keys set expires_at = now() - interval '1 second' where id = ${expired.id}`.execute(
        trx,
      ),
    );
    const revoked = await created({});
    expect((await send(t.app, 'DELETE', `${KEYS}/${revoked.id}`, admin)).statusCode).toBe(204);
    const [byExpired, byRevoked] = [await use(expired.key), await use(revoked.key)];
    expect(byExpired.statusCode).toBe(401);
    expect(byExpired.json().code).toBe('INVALID_TOKEN');
    const { instance, requestId, ...answer } = byExpired.json();
    const { instance: _, requestId: __, ...asRevoked } = byRevoked.json();
    expect(answer).toEqual(asRevoked);
  });

  it('stops working at its expiry even while this process has it cached', async () => {
    freezeDate();
    const key = await created({ expiresAt: inMs(API_KEY_CACHE_MS / 2) });
    expect((await use(key.key)).statusCode).toBe(200);
    advance(API_KEY_CACHE_MS / 4);
    expect((await use(key.key)).statusCode).toBe(200);
    // Past the expiry, still within the lookup cache's age limit.
    advance(API_KEY_CACHE_MS / 4);
    const refused = await use(key.key);
    expect(refused.statusCode).toBe(401);
    expect(refused.json().code).toBe('INVALID_TOKEN');
  });

  it('works until its expiry when never looked up before, and not after', async () => {
    freezeDate();
    const [early, late] = [
      await created({ expiresAt: inMs(60_000) }),
      await created({ expiresAt: inMs(60_000) }),
    ];
    advance(59_000);
    expect((await use(early.key)).statusCode).toBe(200);
    advance(1_000);
    expect((await use(late.key)).statusCode).toBe(401);
    expect((await use(early.key)).statusCode).toBe(401);
  });
});
