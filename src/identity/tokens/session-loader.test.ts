import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../../platform/db/index.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import { uuidv7 } from '../../platform/uuidv7.ts';
import { createTestTenant } from '../auth/auth-test-fixtures.ts';
import { addUser } from '../users/user-test-fixtures.ts';
import { createSessionLoader } from './session-loader.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(() => t?.close());

describe('the session loader', () => {
  it('answers concurrent checks of many sessions from shared queries, each with its own session’s state', async () => {
    const shop = await createTestTenant(t, 'session-loader');
    const other = await createTestTenant(t, 'session-loader-other');
    const users = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        addUser(t, shop.id, `s${i}@loader.test`, i === 0 ? 'staff' : 'customer'),
      ),
    );
    const stranger = await addUser(t, other.id, 'x@loader.test', 'customer');
    const families = users.map(() => uuidv7());
    await withTenant(t.identity.deps.db, shop.id, async (trx) => {
      for (const [i, user] of users.entries()) {
        await sql`insert into identity.refresh_tokens (id, tenant_id, user_id, family_id, token_hash, expires_at, revoked_at)
          values (${uuidv7()}, ${shop.id}, ${user.id}, ${families[i]}, ${uuidv7()}, now() + interval '1 day',
            ${i === 1 ? sql`now()` : null})`.execute(trx);
      }
    });
    const loader = createSessionLoader(t.identity.deps.db);
    const records = await Promise.all([
      ...users.map((u, i) => loader.load(shop.id, u.id, families[i]!)),
      loader.load(shop.id, users[2]!.id, uuidv7()),
      loader.load(shop.id, stranger.id, uuidv7()),
    ]);
    expect(records[0]).toEqual({ status: 'active', role: 'staff', sessionLive: true });
    expect(records[1]).toEqual({ status: 'active', role: 'customer', sessionLive: false });
    for (const record of records.slice(2, 30))
      expect(record).toEqual({ status: 'active', role: 'customer', sessionLive: true });
    // A session the user never had is not live; a user of another tenant is not there at all.
    expect(records[30]).toEqual({ status: 'active', role: 'customer', sessionLive: false });
    expect(records[31]).toBeUndefined();
  });
});
