import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../platform/testing/index.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type HttpAnswer,
  type OpsTenant,
  overHttp,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import { type FakeSource, insertException, putSource, startSource } from './retry-test-fixtures.ts';
import { MAX_CALLS_PER_SOURCE } from './source-breakers.ts';

// What a tenant's operator may make of a source: move it where its stored credentials would go,
// or hold its answers to tie up Mercato's calls.
let t: ExceptionsTestApp;
let shop: OpsTenant;
let erp: FakeSource;
let elsewhere: FakeSource;
let tarpit: FakeSource;
let http: ReturnType<typeof overHttp>;

// Sources on loopback (opened by the operator, as the WAL's tests do): three origins, by port.
beforeAll(async () => {
  erp = await startSource();
  elsewhere = await startSource();
  tarpit = await startSource();
  t = await startExceptionsApp({ MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1' });
  shop = await createOpsTenant(t, 'src-abuse');
  http = overHttp(t);
});
afterAll(async () => {
  await t?.close();
  await Promise.all([erp?.close(), elsewhere?.close(), tarpit?.close()]);
});

const TOKEN = 'erp-token-origin-9c1d';
const path = (type: string) => `/api/v1/exceptions/sources/${type}`;
const sentToken = (source: FakeSource) =>
  source.requests.some((r) => JSON.stringify(r.headers).includes(TOKEN));

describe('a source moved to another origin', () => {
  it('refuses to keep stored credentials when baseUrl moves to another origin, so they never reach it', async () => {
    await putSource(t, shop, 'ORDER', { baseUrl: erp.url, credentials: { token: TOKEN } });
    const moved = await http('PUT', path('ORDER'), shop.operator, { baseUrl: `${elsewhere.url}/x` });
    expect(moved.statusCode, moved.body).toBe(400);
    expect(moved.headers.get('content-type')).toContain('application/problem+json');
    expect(moved.json()).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ in: 'body', pointer: '/credentials', message: expect.stringContaining('origin') }],
    });
    expect(moved.body).not.toContain(TOKEN);

    // The source is unchanged, and a payload read still goes to the first origin only.
    const stored = await http('GET', path('ORDER'), shop.operator);
    expect(stored.json()).toMatchObject({ baseUrl: erp.url, hasCredentials: true });
    erp.payloads.set('ext-origin-1', '{"n":1}');
    await insertException(t, shop.id, {
      transactionId: 'tx-origin-1',
      externalId: 'ext-origin-1',
      sourceRef: { kind: 'source', interfaceType: 'ORDER', externalId: 'ext-origin-1' },
    });
    const detail = await http('GET', '/api/v1/exceptions/tx-origin-1', shop.operator);
    expect(detail.json()).toMatchObject({ payload: { n: 1 }, payloadFrom: 'source' });
    expect(sentToken(erp)).toBe(true);
    expect(sentToken(elsewhere)).toBe(false);
  });

  it('moves to another origin with credentials given again or removed, and keeps them on a path change', async () => {
    await putSource(t, shop, 'COLLECTION', { baseUrl: erp.url, credentials: { token: TOKEN } });
    const samePlace = await http('PUT', path('COLLECTION'), shop.operator, { baseUrl: `${erp.url}/v2` });
    expect(samePlace.statusCode, samePlace.body).toBe(200);
    expect(samePlace.json()).toMatchObject({ hasCredentials: true });

    const removed = await http('PUT', path('COLLECTION'), shop.operator, {
      baseUrl: elsewhere.url,
      credentials: null,
    });
    expect(removed.statusCode, removed.body).toBe(200);
    expect(removed.json()).toMatchObject({ baseUrl: elsewhere.url, hasCredentials: false });

    const given = await http('PUT', path('COLLECTION'), shop.operator, {
      baseUrl: erp.url,
      credentials: { token: 'a-new-token' },
    });
    expect(given.statusCode, given.body).toBe(200);
    expect(given.json()).toMatchObject({ baseUrl: erp.url, hasCredentials: true });
  });
});

describe('calls to a source that answers slowly', () => {
  it('holds at most MAX_CALLS_PER_SOURCE calls open at once; the rest answer at once from the event, saying why', async () => {
    await putSource(t, shop, 'DISTRIBUTION', { baseUrl: tarpit.url, timeoutMs: 30_000 });
    const extra = 4;
    const ids = Array.from({ length: MAX_CALLS_PER_SOURCE + extra }, (_, n) => `tx-calls-${n}`);
    for (const id of ids) {
      tarpit.payloads.set(id, '{"n":1}');
      await insertException(t, shop.id, {
        transactionId: id,
        payload: { from: 'event' },
        sourceRef: { kind: 'source', interfaceType: 'DISTRIBUTION', externalId: id },
      });
    }
    tarpit.hold(ids.length);
    const answers: HttpAnswer[] = [];
    const pending = ids.map((id) =>
      http('GET', `/api/v1/exceptions/${id}`, shop.operator).then((answer) => {
        answers.push(answer);
        return answer;
      }),
    );
    // Every detail has either reached the source (held there) or answered.
    await until(() => tarpit.held.length + answers.length >= ids.length, 'every detail to be under way');
    const heldAtOnce = tarpit.held.length;
    for (const request of tarpit.held) request.answer();
    const all = await Promise.all(pending);

    expect(heldAtOnce).toBe(MAX_CALLS_PER_SOURCE);
    const refused = all.filter((a) => a.json().payloadFrom === 'event');
    expect(refused).toHaveLength(extra);
    for (const answer of refused) {
      expect(answer.statusCode).toBe(200);
      expect(answer.json()).toMatchObject({
        payload: { from: 'event' },
        payloadError: expect.stringContaining('too many calls'),
      });
    }
    expect(all.filter((a) => a.json().payloadFrom === 'source')).toHaveLength(MAX_CALLS_PER_SOURCE);
  });
});
