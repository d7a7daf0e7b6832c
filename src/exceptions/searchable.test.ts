import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestTenant, type TestTenant } from '../identity/auth/auth-test-fixtures.ts';
import { withTenant } from '../platform/db/index.ts';
import { startTestApp, type TestApp } from '../platform/testing/index.ts';
import { prepare } from './capture-prepare.ts';
import { write } from './capture-store.ts';
import { inboundErrors } from './inbound.ts';
import { MAX_SEARCHABLE_BYTES, searchableBytes } from './searchable.ts';
import type { ExceptionsDb, ExceptionsTrx } from './tables.ts';

const event = (details: Record<string, unknown>) => ({
  transactionId: `TX-${Math.random()}`,
  reason: 'Carrier API timed out',
  destination: 'carrier:dhl',
  details,
});

// 4,000 distinct numbers of 300 digits each: 36 KB of JSON, 1.2 MB of numeric text in the vector.
const numbers = Array.from({ length: 4000 }, (_, i) => Number(`${i + 1}e300`));
// 600 KB of distinct hyphenated words: indexed whole and in parts, 1.2 MB.
const hyphenated = Array.from({ length: 60_000 }, (_, i) => `w${i}a-b${i}c`).join(' ');
// Within bounds: a long log of repeated words, and a few ordinary numbers.
const ordinary = { log: 'Connection reset by peer\n'.repeat(20_000), totals: [1, 2.5, 1e21, -3e-7] };

describe("an exception payload's search text", () => {
  it("refuses at write time an inbound event whose numbers or words would pass the search vector's limit", () => {
    for (const details of [{ numbers }, { text: hyphenated }]) {
      expect(inboundErrors('DistributionFailed', event(details))).toEqual([
        expect.objectContaining({ in: 'body', pointer: '/payload' }),
      ]);
    }
    expect(inboundErrors('DistributionFailed', event(ordinary))).toEqual([]);
  });
});

describe('capturing a payload PostgreSQL cannot index', () => {
  let t: TestApp;
  let tenant: TestTenant;
  beforeAll(async () => {
    t = await startTestApp();
    tenant = await createTestTenant(t, 'searchable');
  });
  afterAll(() => t?.close());

  const inTenant = <T>(fn: (trx: ExceptionsTrx) => Promise<T>) =>
    withTenant(t.ctx.db.kysely as ExceptionsDb, tenant.id, (trx) => fn(trx as ExceptionsTrx));

  it('bounds from above what the search vector really holds, so a payload it lets through always indexes', async () => {
    const cases = [
      { numbers: numbers.slice(0, 2000) },
      { text: hyphenated.slice(0, 300_000) },
      { urls: Array.from({ length: 3000 }, (_, i) => `https://h${i}.example.com/p-${i}/q.html?x=${i}`) },
      { accents: Array.from({ length: 3000 }, (_, i) => `ȺȾ${i}-Ⱥ${i}`).join(' ') },
      ordinary,
    ];
    for (const payload of cases) {
      const { rows } = await sql<{ bytes: number }>`
        select coalesce(sum(octet_length(l)), 0)::int as bytes
        from unnest(tsvector_to_array(jsonb_to_tsvector('simple'::regconfig, ${JSON.stringify(payload)}::jsonb,
          '["string", "numeric"]'))) as l`.execute(t.ctx.db.kysely);
      expect(searchableBytes(payload, Number.POSITIVE_INFINITY)).toBeGreaterThanOrEqual(rows[0]!.bytes);
    }
    expect(searchableBytes({ numbers }, Number.POSITIVE_INFINITY)).toBeGreaterThan(MAX_SEARCHABLE_BYTES);
  });

  it('captures the exception without its payload instead of failing the whole batch, every time', async () => {
    const base = {
      eventType: 'DistributionFailed',
      interfaceType: 'DISTRIBUTION' as const,
      operation: 'distribution.send',
      reason: 'Carrier API timed out',
      sourceRef: { kind: 'source' as const, interfaceType: 'DISTRIBUTION' as const, externalId: null },
    };
    const rows = await inTenant(async (trx) => {
      const pending = await prepare(trx, [
        { ...base, transactionId: 'TX-numbers', payload: event({ numbers }) },
        { ...base, transactionId: 'TX-fine', payload: event({ note: 'fine' }) },
      ]);
      return write(trx, tenant.id, [...pending.values()]);
    });
    expect(rows.map((r) => r.transaction_id).sort()).toEqual(['TX-fine', 'TX-numbers']);
    const stored = await inTenant((trx) =>
      trx
        .selectFrom('exceptions.exceptions')
        .select(['transaction_id', 'payload'])
        .orderBy('transaction_id')
        .execute(),
    );
    expect(stored[0]).toMatchObject({ transaction_id: 'TX-fine', payload: { details: { note: 'fine' } } });
    expect(stored[1]).toEqual({ transaction_id: 'TX-numbers', payload: null });
  });
});
