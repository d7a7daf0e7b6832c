import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { withTenant } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { ExceptionRow } from './exception-view.ts';
import { type ExceptionsTestApp, type OpsTenant, send } from './exceptions-test-fixtures.ts';
import type { ExceptionStatus, ExceptionsDb, InterfaceType, SourceRef } from './tables.ts';

const dbOf = (t: ExceptionsTestApp) => t.ctx.db.kysely as unknown as ExceptionsDb;

let groups = 0;

/**
 * Inserts one exception (and a group of its own) as capture would have left it, for the retry
 * and payload tests: they do not depend on the capture pipeline.
 */
export async function insertException(
  t: ExceptionsTestApp,
  tenantId: string,
  input: {
    transactionId: string;
    sourceRef: SourceRef;
    externalId?: string | null;
    interfaceType?: InterfaceType;
    payload?: unknown;
    retryable?: boolean;
    retryCount?: number;
    retryLimit?: number;
    status?: ExceptionStatus;
  },
): Promise<ExceptionRow> {
  groups += 1;
  return withTenant(dbOf(t), tenantId, async (trx) => {
    const group = await trx
      .insertInto('exceptions.groups')
      .values({
        id: uuidv7(),
        tenant_id: tenantId,
        fingerprint: `retry-test-${groups}-${uuidv7()}`.slice(0, 100),
        interface_type: input.interfaceType ?? 'ORDER',
        category: 'SYSTEM_ERROR',
        normalized_reason: 'source failed',
        severity: 'HIGH',
        exceptions: 1,
        occurrences: 1,
        first_seen: new Date(),
        last_seen: new Date(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return trx
      .insertInto('exceptions.exceptions')
      .values({
        id: uuidv7(),
        tenant_id: tenantId,
        transaction_id: input.transactionId,
        external_id: input.externalId ?? null,
        interface_type: input.interfaceType ?? 'ORDER',
        event_type: 'OrderRejected',
        operation: 'createOrder',
        reason: 'the ERP timed out',
        category: 'SYSTEM_ERROR',
        severity: 'HIGH',
        status: input.status ?? 'NEW',
        retryable: input.retryable ?? true,
        retry_count: input.retryCount ?? 0,
        retry_limit: input.retryLimit ?? 5,
        source_ref: JSON.stringify(input.sourceRef),
        payload: JSON.stringify(input.payload ?? { from: 'event' }),
        group_id: group.id,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  });
}

/** The exception as stored now. */
export function exceptionRow(
  t: ExceptionsTestApp,
  tenantId: string,
  transactionId: string,
): Promise<ExceptionRow> {
  return withTenant(dbOf(t), tenantId, (trx) =>
    trx
      .selectFrom('exceptions.exceptions')
      .selectAll()
      .where('transaction_id', '=', transactionId)
      .executeTakeFirstOrThrow(),
  );
}

/** The audit actions of an exception, oldest first. */
export async function auditActions(t: ExceptionsTestApp, tenantId: string, exceptionId: string) {
  const rows = await withTenant(dbOf(t), tenantId, (trx) =>
    trx
      .selectFrom('exceptions.audit')
      .select(['action', 'actor'])
      .where('exception_id', '=', exceptionId)
      .orderBy('at')
      .orderBy('id')
      .execute(),
  );
  return rows.map((r) => r.action);
}

/** Saves the tenant's source of an interface type through the API; returns its answer (with the signing secret on creation). */
export async function putSource(
  t: ExceptionsTestApp,
  tenant: OpsTenant,
  interfaceType: InterfaceType,
  body: Record<string, unknown>,
) {
  const response = await send(
    t.app,
    'PUT',
    `/api/v1/exceptions/sources/${interfaceType}`,
    tenant.admin,
    body,
  );
  expect([200, 201], response.body).toContain(response.statusCode);
  return response.json<{ signingSecret?: string; hasCredentials: boolean; baseUrl: string }>();
}

export type SourceRequest = { method: string; url: string; headers: IncomingHttpHeaders; body: string };

/** A request a FakeSource holds unanswered; answer() answers it as the source would now, or with `status`. */
export type HeldRequest = SourceRequest & { answer(status?: number): void };

/**
 * An interface's source on 127.0.0.1: GET /payloads/{id} answers `payloads[id]` (404 without one),
 * POST /retry answers 200; `failWith(status)` makes every request answer that status until
 * `recover()`; `hold(n)` leaves the next n requests unanswered (in `held`) until each is answered.
 * Every request is recorded, so a test can prove none was made.
 */
export type FakeSource = {
  url: string;
  requests: SourceRequest[];
  payloads: Map<string, string>;
  held: HeldRequest[];
  failWith(status: number): void;
  recover(): void;
  hold(n: number): void;
  close(): Promise<void>;
};

export async function startSource(): Promise<FakeSource> {
  const requests: SourceRequest[] = [];
  const payloads = new Map<string, string>();
  const held: HeldRequest[] = [];
  let holding = 0;
  let failing: number | undefined;
  const respond = (request: SourceRequest, response: ServerResponse, status: number | undefined) => {
    const path = new URL(request.url, 'http://source').pathname;
    const id = decodeURIComponent(path.split('/payloads/')[1] ?? '');
    const payload = request.method === 'GET' ? payloads.get(id) : '{"accepted":true}';
    const code = status ?? failing ?? (payload === undefined ? 404 : 200);
    if (code < 200 || code >= 300 || payload === undefined)
      return response.writeHead(code).end('failing on purpose');
    response.writeHead(code, { 'content-type': 'application/json' }).end(payload);
  };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const recorded = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body,
      };
      requests.push(recorded);
      const path = new URL(recorded.url, 'http://source').pathname;
      const known = (recorded.method === 'POST' && path.endsWith('/retry')) || recorded.method === 'GET';
      if (!known) return response.writeHead(404).end();
      if (holding > 0) {
        holding -= 1;
        held.push({ ...recorded, answer: (status) => respond(recorded, response, status) });
        return;
      }
      respond(recorded, response, undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/erp`,
    requests,
    payloads,
    held,
    failWith(status) {
      failing = status;
    },
    recover() {
      failing = undefined;
    },
    hold(n) {
      holding = n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
