import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloneTestDatabase } from '../testing/index.ts';
import { uuidv7 } from '../uuidv7.ts';
import type { Database } from './index.ts';
import { APP_ROLE, withSystemSettings, withTenant } from './index.ts';

/** The error a promise rejects with (fails the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure');
}

// One database for both: each test's writes name tables of its own.
let db: Database;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ db, drop } = await cloneTestDatabase());
});
afterAll(() => drop());

describe('withSystemSettings', () => {
  /**
   * The pool's connections answer outside any transaction (none left open, or aborted): two
   * statements on one connection see two transaction start times.
   */
  async function expectConnectionsIdle(): Promise<void> {
    for (let i = 0; i < 6; i++) {
      await db.kysely.connection().execute(async (connection) => {
        const first = await sql<{ at: Date }>`select now() as at, pg_sleep(0.002)`.execute(connection);
        const second = await sql<{ at: Date }>`select now() as at`.execute(connection);
        expect(new Date(second.rows[0]?.at as Date).getTime()).toBeGreaterThan(
          new Date(first.rows[0]?.at as Date).getTime(),
        );
      });
    }
  }

  it('runs fn in one transaction with the settings, which end with it', async () => {
    const seen = await withSystemSettings(db.kysely, { enable_seqscan: 'off', jit: 'off' }, async (trx) => {
      const first = await sql<{ seqscan: string; jit: string; at: Date }>`
        select current_setting('enable_seqscan') as seqscan, current_setting('jit') as jit, now() as at`.execute(
        trx,
      );
      await sql`select pg_sleep(0.01)`.execute(trx);
      const second = await sql<{ at: Date }>`select now() as at`.execute(trx);
      return { ...first.rows[0], later: second.rows[0]?.at };
    });
    expect(seen.seqscan).toBe('off');
    expect(seen.jit).toBe('off');
    // now() is the transaction's start: the same in both statements.
    expect(new Date(seen.later as Date).getTime()).toBe(new Date(seen.at as Date).getTime());
    const after = await sql<{ seqscan: string }>`select current_setting('enable_seqscan') as seqscan`.execute(
      db.kysely,
    );
    expect(after.rows[0]?.seqscan).toBe('on');
    await expectConnectionsIdle();
  });

  it('commits what fn wrote', async () => {
    await withSystemSettings(db.kysely, { enable_seqscan: 'off' }, async (trx) => {
      await sql`create table settings_committed (x int)`.execute(trx);
    });
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from settings_committed`.execute(
      db.kysely,
    );
    expect(rows[0]?.n).toBe(0);
  });

  it('rolls back when fn throws, and leaves no connection inside a transaction', async () => {
    const error = await failure(
      withSystemSettings(db.kysely, { enable_seqscan: 'off' }, async (trx) => {
        await sql`create table settings_rolled_back (x int)`.execute(trx);
        throw new Error('fn failed');
      }),
    );
    expect(error.message).toBe('fn failed');
    const { rows } = await sql<{ name: string | null }>`
      select to_regclass('settings_rolled_back')::text as name`.execute(db.kysely);
    expect(rows[0]?.name).toBeNull();
    await expectConnectionsIdle();
  });

  it('rolls back when a setting is refused, before fn runs', async () => {
    let ran = false;
    await failure(
      withSystemSettings(db.kysely, { enable_seqscan: 'maybe' }, async () => {
        ran = true;
      }),
    );
    expect(ran).toBe(false);
    await expectConnectionsIdle();
  });

  it('refuses a name or value it could not inline safely, without a query', async () => {
    const fn = async () => {
      throw new Error('must not run');
    };
    expect((await failure(withSystemSettings(db.kysely, { application_name: "x'; drop" }, fn))).name).toBe(
      'TypeError',
    );
    expect((await failure(withSystemSettings(db.kysely, { "jit', 'on": 'off' }, fn))).name).toBe('TypeError');
  });
});

describe('withTenant with settings', () => {
  it('makes them with the tenant and the role, for its transaction only', async () => {
    const tenantId = uuidv7();
    const seen = await withTenant(
      db.kysely,
      tenantId,
      async (trx) =>
        (
          await sql<{ seqscan: string; tenant: string; role: string }>`
            select current_setting('enable_seqscan') as seqscan, current_setting('app.tenant_id') as tenant,
              current_user as role`.execute(trx)
        ).rows[0],
      { enable_seqscan: 'off' },
    );
    expect(seen).toEqual({ seqscan: 'off', tenant: tenantId, role: APP_ROLE });
    const after = await sql<{ seqscan: string }>`select current_setting('enable_seqscan') as seqscan`.execute(
      db.kysely,
    );
    expect(after.rows[0]?.seqscan).toBe('on');
  });

  it('refuses a value it could not inline safely, without running fn', async () => {
    let ran = false;
    const error = await failure(
      withTenant(
        db.kysely,
        uuidv7(),
        async () => {
          ran = true;
        },
        { enable_seqscan: "off'; reset role; --" },
      ),
    );
    expect(error.name).toBe('TypeError');
    expect(ran).toBe(false);
  });
});
