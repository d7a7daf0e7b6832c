import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tryLogin } from '../../identity/auth/auth-test-fixtures.ts';
import { toAppError } from '../http/problem-handler.ts';
import { openShortTimeoutDatabase, startTestApp, type TestApp, testDatabaseKind } from '../testing/index.ts';
import { type Database, migrate, withTenant } from './index.ts';

const TENANT = '00000000-0000-7000-8000-000000000001';

/** The error a promise rejects with (fails the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('expected a failure');
}

// PGlite cannot cancel a running statement (see openPglite); the timeouts are PostgreSQL's.
describe.runIf(testDatabaseKind() === 'postgres')('statement timeouts on PostgreSQL', () => {
  let db: Database;
  let url: string;
  let close: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ db, url, close } = await openShortTimeoutDatabase(300));
  });
  afterAll(() => close?.());

  it('cancels a statement past the timeout on the owner pool, and answers it as a 503 with Retry-After', async () => {
    const error = await failure(sql`select pg_sleep(3)`.execute(db.kysely));
    expect(error.code).toBe('57014');
    const problem = toAppError(error);
    expect(problem.status).toBe(503);
    expect(problem.code).toBe('SERVICE_UNAVAILABLE');
    expect(problem.extras.retryAfterSeconds).toBeGreaterThan(0);
  });

  it('cancels a statement past the timeout in a tenant transaction, even one that resets it', async () => {
    const slow = await failure(withTenant(db.kysely, TENANT, (trx) => sql`select pg_sleep(3)`.execute(trx)));
    expect(slow.code).toBe('57014');
    // The request role may change its own session setting; every new session starts with the limit.
    const { rows } = await withTenant(db.kysely, TENANT, (trx) =>
      sql<{ timeout: string }>`select current_setting('statement_timeout') as timeout`.execute(trx),
    );
    expect(rows[0]?.timeout).toBe('300ms');
  });

  it('ends a session left idle inside a transaction for twice the timeout', async () => {
    const error = await failure(
      db.kysely.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx);
        await new Promise((resolve) => setTimeout(resolve, 1500));
        await sql`select 1`.execute(trx);
      }),
    );
    expect(toAppError(error).status).toBe(503);
    // The pool replaces the ended session.
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db.kysely);
    expect(rows[0]?.one).toBe(1);
  });

  it('answers a transaction undone by a concurrent one (a lock refused NOWAIT) as a 503 with Retry-After 1', async () => {
    const blocker = new pg.Client({ connectionString: url });
    await blocker.connect();
    try {
      await blocker.query('begin');
      await blocker.query('lock table platform.signing_keys in share mode');
      const refused = await failure(
        db.kysely
          .transaction()
          .execute((trx) => sql`lock table platform.signing_keys in exclusive mode nowait`.execute(trx)),
      );
      expect(refused.code).toBe('55P03');
      const problem = toAppError(refused);
      expect(problem).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
      expect(problem.extras.retryAfterSeconds).toBe(1);
      await blocker.query('rollback');
    } finally {
      await blocker.end();
    }
  });

  it('runs migrations without the timeout, and gives the session back with it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mercato-slow-migration-'));
    await writeFile(join(dir, '9001_slow.sql'), 'select pg_sleep(1);');
    const result = await migrate(db, dir);
    expect(result.error).toBeUndefined();
    expect(result.applied).toEqual(['9001_slow.sql']);
    await db.withScriptRunner(async (runner) => {
      const [row] = await runner.query<{ timeout: string }>(
        `select current_setting('statement_timeout') as timeout`,
      );
      expect(row?.timeout).toBe('300ms');
    });
  });
});

describe.runIf(testDatabaseKind() === 'postgres')('a request held up by the database', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('answers 503 with Retry-After when its statement waits past the timeout, then serves again', {
    timeout: 60_000,
  }, async () => {
    // Another session holds every user row: the login's query waits until its timeout (5 s) ends it.
    const blocker = new pg.Client({ connectionString: t.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('begin');
      await blocker.query('lock table identity.users in access exclusive mode');
      const held = await tryLogin(t.app, 'platform', 'nobody@platform.test', 'not-the-password-1');
      expect(held.statusCode, held.body).toBe(503);
      expect(held.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(held.headers['retry-after']).toBe('5');
      expect(held.json()).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
      await blocker.query('rollback');
    } finally {
      await blocker.end();
    }
    const free = await tryLogin(t.app, 'platform', 'nobody@platform.test', 'not-the-password-1');
    expect(free.statusCode).toBe(401);
  });
});
