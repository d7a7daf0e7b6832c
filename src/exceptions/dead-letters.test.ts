import { createServer } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../checkout/checkout-test-fixtures.ts';
import type { OrdersModule } from '../orders/index.ts';
import { withTenant } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { newSecret } from '../wal/e2e/receiver.ts';
import type { WalModule } from '../wal/index.ts';
import { type Capture, createCapture } from './capture.ts';
import { deadLetterTransactionId } from './dead-letters.ts';
import type { ExceptionsDeps } from './deps.ts';
import type { ExceptionRow } from './exception-view.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import type { ExceptionsDb, ExceptionsTrx } from './tables.ts';

let t: ExceptionsTestApp;
let ops: OpsTenant;
let closedPort: number;
/** A second capture on the same app, to run sweeps by hand. */
let sweeper: Capture;

/** A port nothing listens on: its HTTP target is refused (ECONNREFUSED). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const once = { strategy: 'fixed', baseDelayMs: 50, maxDelayMs: 50, maxAttempts: 1, jitter: 0 };
const hook = () => ({
  name: 'hook',
  type: 'http',
  url: `http://127.0.0.1:${closedPort}/hook`,
  secret: newSecret(),
  timeoutMs: 2000,
});

beforeAll(async () => {
  closedPort = await freePort();
  // The operator opened the closed port to HTTP targets, so the SSRF guard lets the attempt through.
  t = await startExceptionsApp({ MERCATO_WAL_PRIVATE_TARGETS: `127.0.0.1:${closedPort}` });
  ops = await createOpsTenant(t, 'dead-letters');
  const wal = t.modules.find((m) => m.name === 'wal') as WalModule;
  const deps: ExceptionsDeps = {
    ctx: t.ctx,
    db: t.ctx.db.kysely as ExceptionsDb,
    hooks: t.exceptions.hooks,
    events: wal.events,
    wal,
    orders: t.modules.find((m) => m.name === 'orders') as OrdersModule,
    checkout: t.checkout,
  };
  sweeper = createCapture(deps);
  const created = await send(t.app, 'POST', '/api/v1/wal/namespaces', ops.admin, {
    name: 'erp-sync',
    retry: once,
    targets: [hook()],
  });
  expect(created.statusCode, created.body).toBe(201);
  // The collector's own announcements go to a webhook that is down too: their dead letters must
  // not be captured (each capture would announce itself again, for ever).
  const announcements = await send(t.app, 'PUT', '/api/v1/wal/namespaces/exception-events', ops.admin, {
    retry: once,
    targets: [hook()],
  });
  expect(announcements.statusCode, announcements.body).toBe(200);
});
afterAll(() => t?.close());

const inTenant = <T>(fn: (trx: ExceptionsTrx) => Promise<T>) =>
  withTenant(t.ctx.db.kysely as ExceptionsDb, ops.id, (trx) => fn(trx as ExceptionsTrx));

const exceptionOf = (transactionId: string) =>
  inTenant((trx) =>
    trx
      .selectFrom('exceptions.exceptions')
      .selectAll()
      .where('transaction_id', '=', transactionId)
      .executeTakeFirst(),
  );

async function captured(transactionId: string, check: (row: ExceptionRow) => boolean = () => true) {
  let row: ExceptionRow | undefined;
  await until(async () => {
    row = await exceptionOf(transactionId);
    return row !== undefined && check(row);
  }, `${transactionId} captured`);
  return row!;
}

async function isDead(namespace: string, messageId: string): Promise<boolean> {
  const answer = await send(t.app, 'GET', `/api/v1/wal/namespaces/${namespace}/dlq/${messageId}`, ops.admin);
  return answer.statusCode === 200;
}

describe('dead letters as exceptions', () => {
  let messageId: string;

  it('captures a WAL dead letter as a DistributionFailed with its last error', async () => {
    const written = await send(t.app, 'POST', '/api/v1/wal/write', ops.admin, {
      namespace: 'erp-sync',
      payload: { order: 'SO-42' },
      headers: { 'ce-type': 'erp.order.exported', 'ce-correlationid': 'corr-dl' },
    });
    expect(written.statusCode, written.body).toBe(202);
    messageId = written.json<{ messageId: string }>().messageId;
    const row = await captured(`wal:erp-sync:${messageId}`);
    expect(row).toMatchObject({
      interface_type: 'DISTRIBUTION',
      event_type: 'wal.message.dead-lettered',
      operation: 'wal.deliver:erp-sync',
      category: 'NETWORK_ERROR',
      severity: 'MEDIUM',
      retryable: true,
      status: 'NEW',
      occurrences: 1,
      external_id: messageId,
      correlation_id: 'corr-dl',
      source_ref: { kind: 'wal-dead-letter', namespace: 'erp-sync', messageId },
      payload: { type: 'erp.order.exported', payload: { order: 'SO-42' } },
    });
    expect(row.reason).toMatch(/ECONNREFUSED|refused/i);
  });

  it('counts a dead letter requeued and dead again as a repeat, and a sweep never counts a death twice', async () => {
    const id = `wal:erp-sync:${messageId}`;
    const first = await captured(id);
    expect((await sweeper.sweepDeadLetters({ settleMs: 0 })).captured).toBe(0);
    const requeued = await send(
      t.app,
      'POST',
      `/api/v1/wal/namespaces/erp-sync/dlq/${messageId}/requeue`,
      ops.admin,
    );
    expect(requeued.statusCode, requeued.body).toBe(202);
    const again = await captured(id, (row) => row.occurrences === 2);
    expect(new Date(again.last_seen).getTime()).toBeGreaterThan(new Date(first.last_seen).getTime());
    expect((await sweeper.sweepDeadLetters({ settleMs: 0 })).captured).toBe(0);
    expect((await exceptionOf(id))?.occurrences).toBe(2);
    const audit = await inTenant((trx) =>
      trx
        .selectFrom('exceptions.audit')
        .select('action')
        .where('exception_id', '=', first.id)
        .orderBy('at')
        .execute(),
    );
    expect(audit.map((a) => a.action)).toEqual(['captured', 'repeated']);

    // A death the listener missed (here: its exception deleted) is captured by the sweep.
    await inTenant((trx) => trx.deleteFrom('exceptions.exceptions').where('id', '=', first.id).execute());
    expect((await sweeper.sweepDeadLetters({ settleMs: 0 })).captured).toBe(1);
    expect(await exceptionOf(id)).toMatchObject({ occurrences: 1, category: 'NETWORK_ERROR' });
  });

  it('never captures the dead letters of exception-events', async () => {
    let dead: { messageId: string }[] = [];
    await until(async () => {
      const answer = await send(t.app, 'GET', '/api/v1/wal/namespaces/exception-events/dlq', ops.admin);
      dead = answer.json<{ items: { messageId: string }[] }>().items;
      return dead.length > 0;
    }, 'an announcement in the dead letters');
    await sweeper.sweepDeadLetters({ settleMs: 0 });
    for (const letter of dead) {
      expect(await isDead('exception-events', letter.messageId)).toBe(true);
      expect(
        await exceptionOf(deadLetterTransactionId('exception-events', letter.messageId)),
      ).toBeUndefined();
    }
    const { rows } = await inTenant((trx) =>
      sql<{ n: number }>`select count(*)::int as n from exceptions.exceptions
        where transaction_id like 'wal:exception-events:%'`.execute(trx),
    );
    expect(rows[0]?.n).toBe(0);
  });

  it('captures a dead checkout watchdog as a saga step that exhausted its retries: ORDER, CRITICAL', async () => {
    const orderId = uuidv7();
    const watchdog = uuidv7();
    await inTenant((trx) =>
      sql`insert into wal.messages (id, tenant_id, namespace, message_id, ordering_key, payload, headers, request_hash,
          backend, state, due_at, attempts, max_attempts, last_error, dead_at)
        values (${watchdog}, ${ops.id}, 'order-events', ${watchdog}, ${`saga-${orderId}`},
          ${JSON.stringify({ sagaId: uuidv7(), orderId })}::jsonb,
          ${JSON.stringify({ 'ce-type': 'mercato.checkout.watchdog' })}::jsonb, 'x', 'postgres', 'dead', now(), 5, 5,
          ${`checkout saga (order ${orderId}): compensating authorize keeps failing: provider timeout`}, now())`.execute(
        trx,
      ),
    );
    expect((await sweeper.sweepDeadLetters({ settleMs: 0 })).captured).toBe(1);
    expect(await exceptionOf(`wal:order-events:${watchdog}`)).toMatchObject({
      interface_type: 'ORDER',
      operation: 'checkout.compensate',
      category: 'SYSTEM_ERROR',
      severity: 'CRITICAL',
      retryable: true,
      order_id: orderId,
      source_ref: { kind: 'wal-dead-letter', namespace: 'order-events', messageId: watchdog },
    });
    expect(deadLetterTransactionId('ns', 'm'.repeat(200))).toMatch(/^wal:ns:sha256:[0-9a-f]{64}$/);
  });
});
