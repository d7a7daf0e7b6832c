import { createHash, createHmac } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, PASSWORD, post, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { bearer } from '../../identity/users/user-test-fixtures.ts';
import { deriveServerKey } from '../server-keys.ts';
import { startTestApp, type TestApp } from '../testing/index.ts';
import { IDEMPOTENCY_KEY_INFO } from './idempotency.ts';

const ADDRESSES = '/api/v1/users/addresses';
const address = (line1: string) => ({
  type: 'SHIPPING',
  recipient: 'Ada Lovelace',
  line1,
  city: 'London',
  postalCode: 'SW1A 1AA',
  country: 'GB',
});

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
/** The same object with its keys in reverse order. */
const reverseKeys = (value: Record<string, unknown>) => Object.fromEntries(Object.entries(value).reverse());

describe('Idempotency-Key on creating POSTs', () => {
  let t: TestApp;
  let shop: TestTenant;
  let admin: Record<string, string>;
  let customer: Record<string, string>;
  let other: Record<string, string>;

  const storedHash = async (key: string) =>
    (
      await sql<{ request_hash: string }>`
        select request_hash from platform.idempotency_keys where key = ${key}`.execute(t.identity.deps.db)
    ).rows[0]?.request_hash;
  const addressCount = async (auth: Record<string, string>) =>
    (await t.app.inject({ url: ADDRESSES, headers: auth })).json<{ items: unknown[] }>().items.length;

  beforeAll(async () => {
    t = await startTestApp();
    shop = await createTestTenant(t, 'idem');
    admin = await bearer(t, shop.slug, shop.adminEmail);
    for (const email of ['c1@idem.test', 'c2@idem.test']) {
      const registered = await post(t.app, '/api/v1/auth/register', {
        tenant: shop.slug,
        email,
        password: PASSWORD,
        name: 'C',
      });
      expect(registered.statusCode).toBe(201);
    }
    customer = await bearer(t, shop.slug, 'c1@idem.test');
    other = await bearer(t, shop.slug, 'c2@idem.test');
  });
  afterAll(() => t.close());

  it('replays the first answer for the same key and body and creates nothing more', async () => {
    const headers = { ...customer, 'idempotency-key': 'order-42-address' };
    const first = await post(t.app, ADDRESSES, address('1 First Street'), headers);
    const second = await post(t.app, ADDRESSES, address('1 First Street'), headers);
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(second.json()).toEqual(first.json());
    expect(second.headers['content-type']).toBe(first.headers['content-type']);
    expect(await addressCount(customer)).toBe(1);
  });

  it('answers 409 IDEMPOTENCY_KEY_REUSED when the key comes back with another body', async () => {
    const headers = { ...customer, 'idempotency-key': 'reused-key' };
    expect((await post(t.app, ADDRESSES, address('2 Second Street'), headers)).statusCode).toBe(201);
    const changed = await post(t.app, ADDRESSES, address('3 Other Street'), headers);
    expect(changed.statusCode).toBe(409);
    expect(changed.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(changed.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('keeps each caller to its own keys', async () => {
    const key = { 'idempotency-key': 'same-key-two-callers' };
    const mine = await post(t.app, ADDRESSES, address('4 Shared Street'), { ...customer, ...key });
    const theirs = await post(t.app, ADDRESSES, address('4 Shared Street'), { ...other, ...key });
    expect(theirs.statusCode).toBe(201);
    expect(theirs.headers['idempotent-replayed']).toBeUndefined();
    expect(theirs.json<{ id: string }>().id).not.toBe(mine.json<{ id: string }>().id);
  });

  it('creates once when the same key arrives many times at once', async () => {
    const before = await addressCount(other);
    const headers = { ...other, 'idempotency-key': 'burst' };
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => post(t.app, ADDRESSES, address('5 Burst Street'), headers)),
    );
    const created = answers.filter((a) => a.statusCode === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((a) => a.json<{ id: string }>().id)).size).toBe(1);
    for (const a of answers.filter((x) => x.statusCode !== 201)) {
      expect(a.statusCode).toBe(409);
      expect(a.json()).toMatchObject({ code: 'CONFLICT' });
      expect(a.headers['retry-after']).toBe('1');
    }
    expect(await addressCount(other)).toBe(before + 1);
  });

  it('replays a 4xx answer too, so a retry sees what the first attempt saw', async () => {
    const headers = { ...admin, 'idempotency-key': 'dup-staff' };
    const body = { email: shop.adminEmail, password: PASSWORD, name: 'Dup', role: 'staff' };
    const first = await post(t.app, '/api/v1/users', body, headers);
    const again = await post(t.app, '/api/v1/users', body, headers);
    expect(first.statusCode).toBe(409);
    expect(again.statusCode).toBe(409);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json<{ code: string }>().code).toBe('EMAIL_TAKEN');
  });

  it('never stores an API key answer, whose secret is shown once', async () => {
    const headers = { ...admin, 'idempotency-key': 'key-create' };
    const first = await post(t.app, '/api/v1/api-keys', { name: 'ci', permissions: ['users:read'] }, headers);
    const second = await post(
      t.app,
      '/api/v1/api-keys',
      { name: 'ci', permissions: ['users:read'] },
      headers,
    );
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(second.json<{ id: string }>().id).not.toBe(first.json<{ id: string }>().id);
    const stored = await sql<{
      response: string | null;
    }>`select response from platform.idempotency_keys`.execute(t.identity.deps.db);
    for (const row of stored.rows)
      expect(row.response ?? '').not.toContain(first.json<{ key: string }>().key);
  });

  it('replays the first answer when the same body comes back with its keys in another order', async () => {
    const headers = { ...customer, 'idempotency-key': 'reordered-keys' };
    const first = await post(t.app, ADDRESSES, address('7 Order Street'), headers);
    const reordered = reverseKeys(address('7 Order Street'));
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(address('7 Order Street')));
    const again = await post(t.app, ADDRESSES, reordered, headers);
    expect(first.statusCode).toBe(201);
    expect(again.statusCode, again.body).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    const changed = await post(t.app, ADDRESSES, reverseKeys(address('8 Other Street')), headers);
    expect(changed.statusCode).toBe(409);
    expect(changed.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('stores the HMAC, under the deployment key, of the body with its keys sorted, after the method and URL', async () => {
    const key = 'sorted-hash';
    const body = address('9 Sorted Street');
    expect((await post(t.app, ADDRESSES, body, { ...customer, 'idempotency-key': key })).statusCode).toBe(
      201,
    );
    const sorted = `{"city":"London","country":"GB","line1":"9 Sorted Street","postalCode":"SW1A 1AA","recipient":"Ada Lovelace","type":"SHIPPING"}`;
    const hmacKey = await deriveServerKey(t.ctx, t.identity.deps.db, IDEMPOTENCY_KEY_INFO);
    const hmac = createHmac('sha256', hmacKey).update(`POST ${ADDRESSES}\n${sorted}`).digest('hex');
    expect(await storedHash(key)).toBe(hmac);
  });

  it('still replays an answer stored with the hash of an earlier release (the body as sent)', async () => {
    const key = 'hash-before-upgrade';
    const headers = { ...customer, 'idempotency-key': key };
    const body = address('10 Legacy Street');
    const first = await post(t.app, ADDRESSES, body, headers);
    expect(first.statusCode).toBe(201);
    // As an earlier release stored it: sha256 of the method, URL and JSON.stringify(body).
    const legacy = sha256(`POST ${ADDRESSES}\n${JSON.stringify(body)}`);
    expect(legacy).not.toBe(await storedHash(key));
    await sql`update platform.idempotency_keys set request_hash = ${legacy} where key = ${key}`.execute(
      t.identity.deps.db,
    );
    const again = await post(t.app, ADDRESSES, body, headers);
    expect(again.statusCode, again.body).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    const changed = await post(t.app, ADDRESSES, address('11 Other Street'), headers);
    expect(changed.statusCode).toBe(409);
    expect(changed.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });

  it('refuses a malformed key with a problem naming the header', async () => {
    const bad = await post(t.app, ADDRESSES, address('6 Bad Street'), {
      ...customer,
      'idempotency-key': 'x'.repeat(256),
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ in: 'headers', pointer: '/idempotency-key' }],
    });
  });

  it('scopes anonymous calls by address: a replay only reaches the same client', async () => {
    const body = { tenant: shop.slug, email: 'anon@idem.test', password: PASSWORD, name: 'Anon' };
    const key = { 'idempotency-key': 'signup-1' };
    const first = await post(t.app, '/api/v1/auth/register', body, key, '198.51.100.7');
    const replay = await post(t.app, '/api/v1/auth/register', body, key, '198.51.100.7');
    const stranger = await post(t.app, '/api/v1/auth/register', body, key, '203.0.113.9');
    expect(first.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(stranger.statusCode).toBe(409);
    expect(stranger.json<{ code: string }>().code).toBe('EMAIL_TAKEN');
  });
});
