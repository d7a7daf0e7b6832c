import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newCustomer } from '../cart/cart-test-fixtures.ts';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { until } from '../platform/testing/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { verifyWebhook } from '../platform/webhook-signature.ts';
import { newSecret, type Receiver, startReceiver } from '../wal/e2e/receiver.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
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
import type { ExceptionsDb } from './tables.ts';

let t: ExceptionsTestApp;
let shop: OpsTenant;
let other: OpsTenant;
let erp: FakeSource;
let receiver: Receiver;
let orderSecret: string;

// The operator opened loopback (MERCATO_WAL_PRIVATE_TARGETS, as the WAL's tests do) and
// shortened the sources' open circuit to a second.
beforeAll(async () => {
  erp = await startSource();
  receiver = await startReceiver();
  t = await startExceptionsApp({
    MERCATO_WAL_PRIVATE_TARGETS: '127.0.0.1',
    MERCATO_SOURCE_BREAKER_HALF_OPEN_MS: '1000',
  });
  shop = await createOpsTenant(t, 'retry-shop');
  other = await createOpsTenant(t, 'retry-other');
  orderSecret = (
    await putSource(t, shop, 'ORDER', { baseUrl: erp.url, credentials: { token: 'erp-token-7' } })
  ).signingSecret!;
});
afterAll(async () => {
  await t?.close();
  await erp?.close();
  await receiver?.close();
});

const retry = (transactionId: string, headers = shop.operator, extra: Record<string, string> = {}) =>
  send(t.app, 'POST', `/api/v1/exceptions/${encodeURIComponent(transactionId)}/retry`, {
    ...headers,
    ...extra,
  });
const retries = (transactionId: string, headers = shop.operator) =>
  send(t.app, 'GET', `/api/v1/exceptions/${encodeURIComponent(transactionId)}/retries`, headers);

type Attempt = { attempt: number; action: string; status: string; outcome: string | null };

async function retryCompletedEvents(exceptionId: string): Promise<number> {
  const { rows } = await withSystem(t.ctx.db.kysely, (trx) =>
    sql<{ n: number }>`
      select count(*)::int as n from wal.messages
      where tenant_id = ${shop.id} and namespace = 'exception-events'
        and headers->>'ce-type' = 'mercato.exception.retry-completed' and headers->>'ce-subject' = ${exceptionId}`.execute(
      trx,
    ),
  );
  return rows[0]!.n;
}

describe('retrying through a source', () => {
  it('opens the breaker when the source is down (no request while open, 503 SOURCE_UNAVAILABLE), and succeeds once it is back', async () => {
    const source = await startSource();
    try {
      const secret = (await putSource(t, shop, 'DISTRIBUTION', { baseUrl: source.url })).signingSecret!;
      source.payloads.set('SHIP-1', '{"shipment":"SHIP-1","parcels":3}');
      const row = await insertException(t, shop.id, {
        transactionId: 'tx-breaker',
        externalId: 'SHIP-1',
        interfaceType: 'DISTRIBUTION',
        sourceRef: { kind: 'source', interfaceType: 'DISTRIBUTION', externalId: 'SHIP-1' },
      });
      source.failWith(503);

      const failed = await retry('tx-breaker');
      expect(failed.statusCode, failed.body).toBe(201);
      expect(failed.json().attempt).toMatchObject({ attempt: 1, action: 'source', status: 'failed' });
      expect(failed.json().exception).toMatchObject({ status: 'RETRIED_FAILED', retryCount: 1 });
      // Five failures in a row (the payload's GET and its two retries, the POST and one retry) opened it.
      expect(source.requests).toHaveLength(5);

      const refused = await retry('tx-breaker');
      expect(refused.statusCode, refused.body).toBe(503);
      expect(refused.json().code).toBe('SOURCE_UNAVAILABLE');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(source.requests).toHaveLength(5);
      expect((await retries('tx-breaker')).json().items).toHaveLength(1);

      source.recover();
      let back = refused;
      await until(async () => {
        back = await retry('tx-breaker');
        return back.statusCode !== 503;
      }, 'the breaker to let a trial call through');
      expect(back.statusCode, back.body).toBe(201);
      expect(back.json().attempt).toMatchObject({
        attempt: 2,
        status: 'succeeded',
        outcome: 'HTTP 200: {"accepted":true}',
      });
      expect(back.json().exception).toMatchObject({ status: 'RETRIED_SUCCESS', retryCount: 2 });

      // The retry carried the source's payload, signed as WAL webhooks are.
      const post = source.requests.at(-1)!;
      expect(post).toMatchObject({ method: 'POST', url: '/erp/retry' });
      expect(JSON.parse(post.body)).toEqual({
        transactionId: 'tx-breaker',
        externalId: 'SHIP-1',
        interfaceType: 'DISTRIBUTION',
        payload: { shipment: 'SHIP-1', parcels: 3 },
      });
      const headers = {
        id: post.headers['webhook-id'] as string,
        timestamp: post.headers['webhook-timestamp'] as string,
        signature: post.headers['webhook-signature'] as string,
      };
      expect(headers.id).toBe(back.json().attempt.id);
      expect(verifyWebhook(secret, headers, post.body)).toBe(true);
      expect(verifyWebhook(orderSecret, headers, post.body)).toBe(false);

      const list = (await retries('tx-breaker')).json<{ items: Attempt[] }>().items;
      expect(list.map((a) => [a.attempt, a.status])).toEqual([
        [1, 'failed'],
        [2, 'succeeded'],
      ]);
      expect(await auditActions(t, shop.id, row.id)).toEqual([
        'retry.requested',
        'retry.failed',
        'retry.requested',
        'retry.succeeded',
      ]);
      expect(await retryCompletedEvents(row.id)).toBe(2);
    } finally {
      await source.close();
    }
  });

  it('sends credentials to the source only, never in an answer, and honours Idempotency-Key', async () => {
    await insertException(t, shop.id, {
      transactionId: 'tx-idem',
      sourceRef: { kind: 'source', interfaceType: 'ORDER', externalId: null },
      payload: { order: 'carried' },
    });
    const key = { 'idempotency-key': `retry-${uuidv7()}` };
    const first = await retry('tx-idem', shop.operator, key);
    expect(first.statusCode, first.body).toBe(201);
    const again = await retry('tx-idem', shop.operator, key);
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    expect((await retries('tx-idem')).json().items).toHaveLength(1);

    const posts = erp.requests.filter((r) => r.method === 'POST');
    expect(posts).toHaveLength(1);
    expect(posts[0]!.headers.authorization).toBe('Bearer erp-token-7');
    // The source had no payload (404): the event's payload was re-sent.
    expect(JSON.parse(posts[0]!.body).payload).toEqual({ order: 'carried' });
    for (const answer of [first.body, again.body, (await retries('tx-idem')).body]) {
      expect(answer).not.toContain('erp-token-7');
      expect(answer).not.toContain(orderSecret);
    }
  });
});

describe('retrying a dead letter', () => {
  let namespace: string;

  beforeAll(async () => {
    namespace = 'erp-feed';
    const made = await send(t.app, 'POST', '/api/v1/wal/namespaces', shop.admin, {
      name: namespace,
      retry: { strategy: 'fixed', baseDelayMs: 50, maxDelayMs: 50, maxAttempts: 1, jitter: 0 },
      targets: [
        { name: 'erp', type: 'http', url: receiver.url, secret: newSecret(), timeoutMs: 2000, enabled: true },
      ],
    });
    expect(made.statusCode, made.body).toBe(201);
  });

  /** Writes a message that the failing receiver turns into a dead letter, and its exception. */
  async function deadLetter(transactionId: string) {
    const messageId = `msg-${uuidv7()}`;
    receiver.failNext(1, 500);
    const written = await send(t.app, 'POST', '/api/v1/wal/write', shop.admin, {
      namespace,
      messageId,
      payload: { shipment: transactionId },
    });
    expect(written.statusCode, written.body).toBe(202);
    await until(async () => {
      const m = await send(
        t.app,
        'GET',
        `/api/v1/wal/messages/${messageId}?namespace=${namespace}`,
        shop.admin,
      );
      return m.json().state === 'dead';
    }, 'the message to be dead');
    return insertException(t, shop.id, {
      transactionId,
      interfaceType: 'DISTRIBUTION',
      sourceRef: { kind: 'wal-dead-letter', namespace, messageId },
    });
  }

  const settled = (transactionId: string) =>
    until(async () => {
      const items = (await retries(transactionId)).json<{ items: Attempt[] }>().items;
      return items.at(-1)?.status !== 'pending';
    }, `the retry of ${transactionId} to settle`);

  it('requeues it, and the attempt succeeds once the message is delivered', async () => {
    const row = await deadLetter('tx-requeue');
    const before = receiver.received.length;
    const requeued = await retry('tx-requeue');
    expect(requeued.statusCode, requeued.body).toBe(202);
    expect(requeued.headers.location).toBe('/api/v1/exceptions/tx-requeue/retries');
    expect(requeued.json().attempt).toMatchObject({ action: 'requeue', status: 'pending' });
    expect(requeued.json().exception.status).toBe('RETRY_IN_PROGRESS');
    await settled('tx-requeue');

    expect((await retries('tx-requeue')).json().items[0]).toMatchObject({
      status: 'succeeded',
      outcome: `delivered (${namespace})`,
    });
    expect(receiver.received.length).toBe(before + 1);
    expect(receiver.received.at(-1)!.event.data).toEqual({ shipment: 'tx-requeue' });
    expect((await exceptionRow(t, shop.id, 'tx-requeue')).status).toBe('RETRIED_SUCCESS');
    expect(await auditActions(t, shop.id, row.id)).toEqual(['retry.requested', 'retry.succeeded']);
    expect(await retryCompletedEvents(row.id)).toBe(1);

    // Retried successfully, it is not retried again (the lifecycle goes on to resolved or closed).
    const again = await retry('tx-requeue');
    expect(again.statusCode, again.body).toBe(409);
    expect(again.json()).toMatchObject({ code: 'ILLEGAL_TRANSITION', from: 'RETRIED_SUCCESS' });
  });

  it('fails at once, saying so, when the message is no longer a dead letter', async () => {
    const delivered = await deadLetter('tx-first-copy');
    expect((await retry('tx-first-copy')).statusCode).toBe(202);
    await settled('tx-first-copy');
    // A second exception about the same message, which meanwhile was delivered.
    await insertException(t, shop.id, { transactionId: 'tx-second-copy', sourceRef: delivered.source_ref });
    const gone = await retry('tx-second-copy');
    expect(gone.statusCode, gone.body).toBe(201);
    expect(gone.json().attempt).toMatchObject({ action: 'requeue', status: 'failed' });
    expect(gone.json().attempt.outcome).toMatch(/no longer a dead letter/);
    expect(gone.json().exception).toMatchObject({ status: 'RETRIED_FAILED', retryCount: 1 });
  });

  it('fails the attempt when the requeued message dies again, and answers RETRY_IN_PROGRESS meanwhile', async () => {
    await deadLetter('tx-dies-again');
    const hung = receiver.hung();
    receiver.hang(() => true);
    try {
      expect((await retry('tx-dies-again')).statusCode).toBe(202);
      // The requeued delivery hangs until the target's timeout: the message dies again then.
      await until(() => receiver.hung() > hung, 'the requeued delivery to arrive');
      const busy = await retry('tx-dies-again');
      expect(busy.statusCode).toBe(409);
      expect(busy.json().code).toBe('RETRY_IN_PROGRESS');
    } finally {
      receiver.hang(undefined);
    }
    await settled('tx-dies-again');
    const [attempt] = (await retries('tx-dies-again')).json<{ items: Attempt[] }>().items;
    expect(attempt).toMatchObject({ status: 'failed' });
    expect(attempt!.outcome).toMatch(/^dead again: /);
    expect((await exceptionRow(t, shop.id, 'tx-dies-again')).status).toBe('RETRIED_FAILED');
  });
  it('lets an operator resolve while the requeue waits; the attempt still ends, and the exception stays resolved', async () => {
    const row = await deadLetter('tx-resolved-meanwhile');
    const hung = receiver.hung();
    receiver.hang(() => true);
    try {
      expect((await retry('tx-resolved-meanwhile')).statusCode).toBe(202);
      await until(() => receiver.hung() > hung, 'the requeued delivery to arrive');
      const resolved = await send(
        t.app,
        'PUT',
        '/api/v1/exceptions/tx-resolved-meanwhile/resolve',
        shop.operator,
        {
          resolution: 'fixed upstream',
        },
      );
      expect(resolved.statusCode, resolved.body).toBe(200);
      expect(resolved.json().status).toBe('RESOLVED');
    } finally {
      receiver.hang(undefined);
    }
    await settled('tx-resolved-meanwhile');
    const [attempt] = (await retries('tx-resolved-meanwhile')).json<{ items: Attempt[] }>().items;
    expect(attempt).toMatchObject({ status: 'failed' });
    expect(attempt!.outcome).toMatch(/^dead again: /);
    expect((await exceptionRow(t, shop.id, 'tx-resolved-meanwhile')).status).toBe('RESOLVED');
    expect(await auditActions(t, shop.id, row.id)).toEqual(['retry.requested', 'resolved', 'retry.failed']);
  });
});

describe('what cannot be retried', () => {
  it.each([
    ['not retryable', { retryable: false }, 'NOT_RETRYABLE'],
    ['out of retries', { retryCount: 3, retryLimit: 3 }, 'RETRY_LIMIT_REACHED'],
    ['resolved', { status: 'RESOLVED' as const }, 'ILLEGAL_TRANSITION'],
    ['closed', { status: 'CLOSED' as const }, 'ILLEGAL_TRANSITION'],
  ])('answers 409 for an exception %s', async (name, fields, code) => {
    const transactionId = `tx-409-${name.replaceAll(' ', '-')}`;
    await insertException(t, shop.id, {
      transactionId,
      sourceRef: { kind: 'source', interfaceType: 'ORDER', externalId: null },
      ...fields,
    });
    const requests = erp.requests.length;
    const response = await retry(transactionId);
    expect(response.statusCode, response.body).toBe(409);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json().code).toBe(code);
    expect(erp.requests.length).toBe(requests);
    expect((await retries(transactionId)).json().items).toEqual([]);
  });

  it('answers 409 RETRY_IN_PROGRESS while an attempt is pending', async () => {
    const row = await insertException(t, shop.id, {
      transactionId: 'tx-pending',
      sourceRef: { kind: 'source', interfaceType: 'ORDER', externalId: null },
    });
    await withTenant(t.ctx.db.kysely as unknown as ExceptionsDb, shop.id, (trx) =>
      trx
        .insertInto('exceptions.retry_attempts')
        .values({
          id: uuidv7(),
          tenant_id: shop.id,
          exception_id: row.id,
          attempt: 1,
          action: 'source',
          status: 'pending',
          outcome: null,
          requested_by: 'user:someone',
          started_at: new Date(),
          finished_at: null,
        })
        .execute(),
    );
    const response = await retry('tx-pending');
    expect(response.statusCode).toBe(409);
    expect(response.json().code).toBe('RETRY_IN_PROGRESS');
  });

  it('answers 409 SOURCE_NOT_CONFIGURED without a source, and NOT_RETRYABLE for an order, saying why', async () => {
    await insertException(t, shop.id, {
      transactionId: 'tx-no-source',
      interfaceType: 'VALIDATION',
      sourceRef: { kind: 'source', interfaceType: 'VALIDATION', externalId: 'v-1' },
    });
    const none = await retry('tx-no-source');
    expect(none.statusCode).toBe(409);
    expect(none.json()).toMatchObject({ code: 'SOURCE_NOT_CONFIGURED', interfaceType: 'VALIDATION' });

    await insertException(t, shop.id, {
      transactionId: 'tx-order',
      sourceRef: { kind: 'order', orderId: uuidv7() },
    });
    const order = await retry('tx-order');
    expect(order.statusCode).toBe(409);
    expect(order.json().code).toBe('NOT_RETRYABLE');
    expect(order.json().detail).toMatch(/payment token/);
    expect((await exceptionRow(t, shop.id, 'tx-order')).retry_count).toBe(0);
  });

  it('answers 404 for an unknown exception and 400 for a transaction id longer than any', async () => {
    expect((await retry('tx-never')).statusCode).toBe(404);
    expect((await retries('tx-never')).statusCode).toBe(404);
    const long = await retry('x'.repeat(201));
    expect(long.statusCode, long.body).toBe(400);
    expect(long.json().code).toBe('VALIDATION_FAILED');
    // The longest transaction id there can be still has a path of its own.
    expect((await retry('x'.repeat(200))).statusCode).toBe(404);
  });
});

describe('who may retry', () => {
  beforeAll(async () => {
    await insertException(t, shop.id, {
      transactionId: 'tx-private',
      sourceRef: { kind: 'source', interfaceType: 'ORDER', externalId: null },
    });
  });

  it("gives another tenant's operator 404, never the exception", async () => {
    expect((await retry('tx-private', other.operator)).statusCode).toBe(404);
    expect((await retries('tx-private', other.operator)).statusCode).toBe(404);
    expect((await exceptionRow(t, shop.id, 'tx-private')).retry_count).toBe(0);
  });

  it('is for operators and admins only: staff and customers 403, anonymous 401', async () => {
    const customer = await newCustomer(t, shop);
    for (const headers of [shop.staff, customer, shop.writer]) {
      expect((await retry('tx-private', headers)).statusCode).toBe(403);
      expect((await retries('tx-private', headers)).statusCode).toBe(403);
    }
    expect((await retry('tx-private', {})).statusCode).toBe(401);
    expect((await retries('tx-private', {})).statusCode).toBe(401);
    expect((await exceptionRow(t, shop.id, 'tx-private')).retry_count).toBe(0);
    expect((await retries('tx-private', shop.admin)).statusCode).toBe(200);
  });
});
