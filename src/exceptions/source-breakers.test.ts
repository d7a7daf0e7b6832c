import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../platform/db/index.ts';
import { until } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type HttpAnswer,
  type OpsTenant,
  overHttp,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import {
  auditActions,
  exceptionRow,
  type FakeSource,
  insertException,
  putSource,
  startSource,
} from './retry-test-fixtures.ts';
import type { InterfaceType } from './tables.ts';

/**
 * How long an open breaker refuses calls here: long enough for a test's next steps (a retry's
 * transaction, an answer) to come within it on a loaded machine.
 */
const OPEN_MS = 3000;

let t: ExceptionsTestApp;

// The operator opened loopback (MERCATO_WAL_PRIVATE_TARGETS, as the WAL's tests do) and
// shortened the sources' open circuit.
beforeAll(async () => {
  t = await startExceptionsApp({
    MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1',
    MERCATO_SOURCE_BREAKER_HALF_OPEN_MS: String(OPEN_MS),
  });
});
afterAll(() => t?.close());

/** The open period over: the next call may be the trial. */
const openPeriodOver = () => new Promise((resolve) => setTimeout(resolve, OPEN_MS + 200));

/** A tenant with a source of its own (failing), and exceptions of that source to retry. */
async function failingSource(slug: string, type: InterfaceType) {
  const tenant = await createOpsTenant(t, slug);
  const source = await startSource();
  // Held calls wait for the test, not for the timeout.
  await putSource(t, tenant, type, { baseUrl: source.url, timeoutMs: 30_000 });
  source.failWith(503);
  const exception = async () => {
    const transactionId = `${slug}-${uuidv7()}`;
    await insertException(t, tenant.id, {
      transactionId,
      interfaceType: type,
      sourceRef: { kind: 'source', interfaceType: type, externalId: null },
    });
    return transactionId;
  };
  return { tenant, source, exception };
}

const retry = (tenant: OpsTenant, transactionId: string) =>
  overHttp(t)('POST', `/api/v1/exceptions/${encodeURIComponent(transactionId)}/retry`, tenant.operator);

/** Nothing was recorded of a retry refused with 503: no attempt, no retry spent, no audit. */
async function expectUntouched(tenant: OpsTenant, transactionId: string) {
  const row = await exceptionRow(t, tenant.id, transactionId);
  expect(row).toMatchObject({ status: 'NEW', retry_count: 0 });
  expect(await auditActions(t, tenant.id, row.id)).toEqual([]);
  const attempts = await overHttp(t)('GET', `/api/v1/exceptions/${transactionId}/retries`, tenant.operator);
  expect(attempts.json().items).toEqual([]);
}

describe("a source's breaker under concurrent calls", () => {
  const sources: FakeSource[] = [];
  afterAll(async () => {
    for (const source of sources) await source.close();
  });

  it('lets one trial call through once the open period is over; the rest answer 503 at once, nothing spent', async () => {
    const { tenant, source, exception } = await failingSource('brk-trial', 'COLLECTION');
    sources.push(source);
    // Failures at once open it: the next retry is refused, and reaches nothing.
    const openers = await Promise.all([1, 2, 3].map(async () => retry(tenant, await exception())));
    for (const opener of openers) expect([201, 503], opener.body).toContain(opener.statusCode);
    const made = source.requests.length;
    const refused = await exception();
    const closedDoor = await retry(tenant, refused);
    expect(closedDoor.statusCode, closedDoor.body).toBe(503);
    expect(closedDoor.json().code).toBe('SOURCE_UNAVAILABLE');
    expect(source.requests).toHaveLength(made);
    await expectUntouched(tenant, refused);

    await openPeriodOver();
    // Five retries and a detail at once; the first call to reach the source is held there.
    source.hold(1);
    const ids = await Promise.all([1, 2, 3, 4, 5].map(() => exception()));
    const answers = new Map<string, HttpAnswer>();
    const sent = ids.map((id) => retry(tenant, id).then((answer) => answers.set(id, answer)));
    await until(() => source.held.length === 1, 'the trial call to reach the source');
    // Neither the other retries nor a detail wait for the trial's outcome.
    await until(() => answers.size === 4, 'the other retries to be refused while the trial runs', 10_000);
    const trial = ids.find((id) => !answers.has(id))!;
    const shown = await overHttp(t)(
      'GET',
      `/api/v1/exceptions/${ids.find((id) => id !== trial)}`,
      tenant.operator,
    );
    expect(shown.statusCode).toBe(200);
    expect(shown.json()).toMatchObject({
      payloadFrom: 'event',
      payloadError: 'the source is failing: its circuit is open',
    });
    for (const id of ids.filter((x) => x !== trial)) {
      expect(answers.get(id)!.statusCode, answers.get(id)!.body).toBe(503);
      expect(Number(answers.get(id)!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      await expectUntouched(tenant, id);
    }

    // The trial fails: open again, for another period.
    source.held[0]!.answer(503);
    await Promise.all(sent);
    expect(answers.get(trial)!.statusCode, answers.get(trial)!.body).toBe(201);
    expect(answers.get(trial)!.json().attempt).toMatchObject({ status: 'failed' });
    expect(source.requests).toHaveLength(made + 1);
    const again = await retry(tenant, ids.find((id) => id !== trial)!);
    expect(again.statusCode, again.body).toBe(503);
    expect(source.requests).toHaveLength(made + 1);

    // Back up: the next trial closes it, and the retries go through.
    source.recover();
    await openPeriodOver();
    const [first, ...rest] = ids.filter((id) => id !== trial);
    const closing = await retry(tenant, first!);
    expect(closing.statusCode, closing.body).toBe(201);
    expect(closing.json().attempt).toMatchObject({ status: 'succeeded' });
    const after = await Promise.all(rest.map((id) => retry(tenant, id)));
    expect(after.map((a) => [a.statusCode, a.json().attempt?.status])).toEqual(
      Array(3).fill([201, 'succeeded']),
    );
  });

  it('lets the trial decide: a failure of a call made before the circuit opened does not open it again', async () => {
    const { tenant, source, exception } = await failingSource('brk-stale', 'DISTRIBUTION');
    sources.push(source);
    // A slow call, made while the circuit was closed, is held at the source.
    source.hold(1);
    const slow = retry(tenant, await exception());
    await until(() => source.held.length === 1, 'the slow call to reach the source');
    // Meanwhile the source fails fast for another retry, which opens the circuit.
    const opener = await retry(tenant, await exception());
    expect(opener.statusCode, opener.body).toBe(201);
    expect((await retry(tenant, await exception())).statusCode).toBe(503);

    await openPeriodOver();
    source.hold(1);
    const probe = retry(tenant, await exception());
    await until(() => source.held.length === 2, 'the trial call to reach the source');
    // The slow call fails now, while the trial runs: it says nothing of the source since it opened.
    source.held[0]!.answer(503);
    expect((await slow).json().attempt).toMatchObject({ status: 'failed' });
    // The trial succeeds: closed, and its retry goes on to the source's retry endpoint.
    source.recover();
    source.held[1]!.answer();
    const tried = await probe;
    expect(tried.statusCode, tried.body).toBe(201);
    expect(tried.json().attempt).toMatchObject({
      status: 'succeeded',
      outcome: 'HTTP 200: {"accepted":true}',
    });
    const next = await retry(tenant, await exception());
    expect(next.statusCode, next.body).toBe(201);
    expect(next.json().attempt).toMatchObject({ status: 'succeeded' });
  });

  it('leaves the trial to the next call when the retry holding it made none', async () => {
    const { tenant, source, exception } = await failingSource('brk-no-call', 'VALIDATION');
    sources.push(source);
    expect((await retry(tenant, await exception())).statusCode).toBe(201);
    expect((await retry(tenant, await exception())).statusCode).toBe(503);
    // The source's secrets gone (as a row from before they were kept): a retry fails before calling.
    const secrets = async (value: string | null) => {
      const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
        sql<{ before: string | null }>`
          update exceptions.sources s set credentials_encrypted = ${value}
          from (select credentials_encrypted as before from exceptions.sources
            where tenant_id = ${tenant.id} and interface_type = 'VALIDATION' for update) b
          where s.tenant_id = ${tenant.id} and s.interface_type = 'VALIDATION'
          returning b.before`.execute(trx),
      );
      return rows[0]!.before;
    };
    const kept = await secrets(null);
    source.recover();
    await openPeriodOver();
    const made = source.requests.length;
    const none = await retry(tenant, await exception());
    expect(none.statusCode, none.body).toBe(201);
    expect(none.json().attempt.outcome).toMatch(/no signing secret/);
    expect(source.requests).toHaveLength(made);
    // Back as they were: the next retry gets the trial, which closes the circuit.
    await secrets(kept);
    const next = await retry(tenant, await exception());
    expect(next.statusCode, next.body).toBe(201);
    expect(next.json().attempt).toMatchObject({ status: 'succeeded' });
  });
});
