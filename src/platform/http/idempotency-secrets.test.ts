import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, PASSWORD, post } from '../../identity/auth/auth-test-fixtures.ts';
import { startTestApp, type TestApp } from '../testing/index.ts';
import { canonicalJson } from './request-fingerprint.ts';

// A request's Idempotency-Key record keeps a hash of its body for a day. The bodies of
// registrations, staff accounts and tenants hold a password: a plain SHA-256 of them let whoever
// reads platform.idempotency_keys (a backup, a replica) test password guesses at GPU speed, where
// the users table makes each guess cost an argon2 hash.
const REGISTER = '/api/v1/auth/register';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('Idempotency-Key records of requests that carry a password', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
    await createTestTenant(t, 'idem-secret');
  });
  afterAll(() => t.close());

  const storedHash = async (key: string) =>
    (
      await sql<{ request_hash: string }>`
        select request_hash from platform.idempotency_keys where key = ${key}`.execute(t.identity.deps.db)
    ).rows[0]?.request_hash;

  it('keep no hash a password guess can be checked against without a server key', async () => {
    const body = { tenant: 'idem-secret', email: 'ada@idem-secret.test', password: PASSWORD, name: 'Ada' };
    const headers = { 'idempotency-key': 'register-once' };
    const first = await post(t.app, REGISTER, body, headers);
    expect(first.statusCode, first.body).toBe(201);
    const stored = await storedHash('register-once');
    expect(stored).toBeDefined();
    // What an attacker holding the table computes for a guess: the right guess must not match.
    for (const text of [canonicalJson(body), JSON.stringify(body)]) {
      expect(stored).not.toBe(sha256(`POST ${REGISTER}\n${text}`));
    }
    // The record still does its job: the same request replays, another password is refused.
    const again = await post(t.app, REGISTER, body, headers);
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    const changed = await post(t.app, REGISTER, { ...body, password: `${PASSWORD}!` }, headers);
    expect(changed.statusCode).toBe(409);
    expect(changed.json()).toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED' });
  });
});
