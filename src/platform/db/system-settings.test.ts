import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloneTestDatabase } from '../testing/index.ts';
import { uuidv7 } from '../uuidv7.ts';
import type { Database } from './index.ts';
import {
  APP_ROLE,
  type CommitStatement,
  commitQueue,
  deferToCommit,
  flushDeferred,
  together,
  withSystemSettings,
  withTenant,
} from './index.ts';

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

  it('rolls back when a setting is refused: nothing fn wrote stays, and the setting is what fails', async () => {
    // fn starts before BEGIN's answer (its first statement is pipelined behind it), so its
    // statements run in the transaction the refused setting aborted, and fail there.
    const error = await failure(
      withSystemSettings(db.kysely, { enable_seqscan: 'maybe' }, async (trx) => {
        await sql`create table settings_refused (x int)`.execute(trx);
      }),
    );
    expect(error.message).toMatch(/enable_seqscan/);
    const { rows } = await sql<{ name: string | null }>`
      select to_regclass('settings_refused')::text as name`.execute(db.kysely);
    expect(rows[0]?.name).toBeNull();
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

describe('withTenant: what is queued for the commit', () => {
  const tenantId = uuidv7();
  const rows = async () =>
    (await sql<{ x: number }>`select x from commit_queue_rows order by x`.execute(db.kysely)).rows.map(
      (r) => r.x,
    );
  const insertAll = (trx: object, xs: number[]): CommitStatement => ({
    query: sql`insert into commit_queue_rows select unnest(${xs}::int[])`.compile(trx as Kysely<unknown>),
    failure: (error) => new Error(`mapped: ${(error as Error).message}`),
  });

  beforeAll(async () => {
    await sql`create table commit_queue_rows (x int check (x < 100))`.execute(db.kysely);
    await sql.raw(`grant select, insert on commit_queue_rows to ${APP_ROLE}`).execute(db.kysely);
  });

  it('is written in the same commit, after what fn wrote itself', async () => {
    const owner = {};
    await withTenant(db.kysely, tenantId, async (trx) => {
      commitQueue<number>(trx, owner, (xs) => insertAll(trx, xs))!.push(2, 3);
      await sql`insert into commit_queue_rows values (1)`.execute(trx);
      commitQueue<number>(trx, owner, (xs) => insertAll(trx, xs))!.push(4);
      // Not written yet: only fn's own row is there, inside its transaction.
      const seen = await sql<{ x: number }>`select x from commit_queue_rows`.execute(trx);
      expect(seen.rows.map((r) => r.x)).toEqual([1]);
    });
    expect(await rows()).toEqual([1, 2, 3, 4]);
  });

  it('rolls back all of fn when its statement fails, with the error its failure makes', async () => {
    const before = await rows();
    const error = await failure(
      withTenant(db.kysely, tenantId, async (trx) => {
        await sql`insert into commit_queue_rows values (10)`.execute(trx);
        commitQueue<number>(trx, {}, (xs) => insertAll(trx, xs))!.push(11, 500);
      }),
    );
    expect(error.message).toMatch(/^mapped: .*commit_queue_rows_x_check/);
    expect(await rows()).toEqual(before);
  });

  it('fails, and keeps nothing, when fn caught the error of a statement that aborted it', async () => {
    const before = await rows();
    await failure(
      withTenant(db.kysely, tenantId, async (trx) => {
        await sql`insert into commit_queue_rows values (20)`.execute(trx);
        await sql`insert into commit_queue_rows values (999)`.execute(trx).catch(() => {});
      }),
    );
    expect(await rows()).toEqual(before);
  });

  it('holds a deferred statement to the commit, or writes it now when its owner flushes or defers again', async () => {
    const owner = {};
    const seen = async (trx: object) =>
      (
        await sql<{
          x: number;
        }>`select x from commit_queue_rows where x between 30 and 39 order by x`.execute(
          trx as Kysely<unknown>,
        )
      ).rows.map((r) => r.x);
    await withTenant(db.kysely, tenantId, async (trx) => {
      await deferToCommit(trx, owner, insertAll(trx, [30]));
      expect(await seen(trx)).toEqual([]);
      await flushDeferred(trx, owner);
      expect(await seen(trx)).toEqual([30]);
      expect(flushDeferred(trx, owner)).toBeUndefined(); // nothing left to write
      await deferToCommit(trx, owner, insertAll(trx, [31]));
      // A second deferral writes the first now, so the owner's statements keep their order.
      await deferToCommit(trx, owner, insertAll(trx, [32]));
      expect(await seen(trx)).toEqual([30, 31]);
    });
    expect((await rows()).filter((x) => x >= 30 && x < 40)).toEqual([30, 31, 32]);
  });

  it('drops a deferred statement with the rollback, and runs it at once outside a withTenant transaction', async () => {
    const owner = {};
    await failure(
      withTenant(db.kysely, tenantId, async (trx) => {
        await deferToCommit(trx, owner, insertAll(trx, [40]));
        throw new Error('fn failed');
      }),
    );
    expect(await rows()).not.toContain(40);
    await db.kysely.transaction().execute(async (trx) => {
      await deferToCommit(trx, owner, insertAll(trx, [41]));
      const now = await sql<{ x: number }>`select x from commit_queue_rows where x = 41`.execute(trx);
      expect(now.rows).toHaveLength(1);
    });
  });

  it('is written at once outside a withTenant transaction (no queue)', async () => {
    await db.kysely.transaction().execute(async (trx) => {
      expect(commitQueue<number>(trx, {}, (xs) => insertAll(trx, xs))).toBeUndefined();
    });
  });
});

describe('withTenant: statements made together (together)', () => {
  const tenantId = uuidv7();
  const rows = async () =>
    (await sql<{ x: number }>`select x from together_rows order by x`.execute(db.kysely)).rows.map(
      (r) => r.x,
    );

  beforeAll(async () => {
    await sql`create table together_rows (x int check (x < 100))`.execute(db.kysely);
    await sql.raw(`grant select, insert on together_rows to ${APP_ROLE}`).execute(db.kysely);
  });

  it('runs them in the order they were made and answers each', async () => {
    const [, seen, , all] = await withTenant(db.kysely, tenantId, (trx) =>
      together([
        sql`insert into together_rows values (1)`.execute(trx),
        sql<{ n: number }>`select count(*)::int as n from together_rows`.execute(trx),
        sql`insert into together_rows values (2)`.execute(trx),
        sql<{ xs: number[] }>`select array_agg(x order by x) as xs from together_rows`.execute(trx),
      ]),
    );
    expect(seen.rows[0]?.n).toBe(1);
    expect(all.rows[0]?.xs).toEqual([1, 2]);
    expect(await rows()).toEqual([1, 2]);
  });

  it('throws the error of the statement that failed, not the aborted transaction of those after it, and keeps nothing', async () => {
    const before = await rows();
    const error = await failure(
      withTenant(db.kysely, tenantId, (trx) =>
        together([
          // Its second statement goes out after the failing one below, and is refused (25P02).
          (async () => {
            await sql`select pg_sleep(0.01)`.execute(trx);
            await sql`insert into together_rows values (10)`.execute(trx);
          })(),
          sql`insert into together_rows values (999)`.execute(trx),
          sql`insert into together_rows values (11)`.execute(trx),
        ]),
      ),
    );
    expect((error as Error & { code?: string }).code).toBe('23514');
    expect(error.message).toMatch(/together_rows_x_check/);
    expect(await rows()).toEqual(before);
  });
});
