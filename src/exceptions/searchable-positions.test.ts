import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
  writeInbound,
} from './exceptions-test-fixtures.ts';
import { searchableBytes } from './searchable.ts';

// 140,000 distinct four-character words: 700 KB of JSON (under the namespace's 1 MiB), 560 KB of
// lexeme text, but 1.1 MB of search vector once each lexeme's position is counted.
const manyWords = Array.from({ length: 140_000 }, (_, i) => (i + 36 ** 3).toString(36)).join(' ');

const failed = (transactionId: string, details: Record<string, unknown>) => ({
  type: 'DistributionFailed',
  data: { transactionId, reason: 'Carrier API timed out', destination: 'carrier:dhl', details },
});

describe('the search vector of an inbound payload, positions included', () => {
  let t: ExceptionsTestApp;
  let ops: OpsTenant;
  beforeAll(async () => {
    t = await startExceptionsApp();
    ops = await createOpsTenant(t, 'searchable-positions');
  });
  afterAll(() => t?.close());

  it('bounds from above the bytes PostgreSQL counts against its limit, lexemes and their positions', async () => {
    const cases = [
      { words: manyWords.slice(0, 100_000) },
      { repeated: 'ab cd ef gh '.repeat(2_000) },
      { parts: Array.from({ length: 2_000 }, (_, i) => `x${i}\u007fy${i}\u007fz${i}`).join(' ') },
      { hyphens: Array.from({ length: 2_000 }, (_, i) => `a${i}-b-c-d-e-f`).join(' ') },
      { numbers: Array.from({ length: 2_000 }, (_, i) => [i, -i / 7, i * 1e20]).flat() },
      { urls: Array.from({ length: 1_000 }, (_, i) => `https://h${i}.example.com/p-${i}/q.html?x=${i}`) },
    ];
    for (const payload of cases) {
      // What the limit ("string is too long for tsvector") measures: the vector less its header and entries.
      const { rows } = await sql<{ bytes: number }>`
        select pg_column_size(v) - 8 - 4 * length(v) as bytes
        from (select jsonb_to_tsvector('simple'::regconfig, ${JSON.stringify(payload)}::jsonb,
          '["string", "numeric"]') as v) s`.execute(t.ctx.db.kysely);
      expect(
        searchableBytes(payload, Number.POSITIVE_INFINITY),
        Object.keys(payload)[0],
      ).toBeGreaterThanOrEqual(rows[0]!.bytes);
    }
  });

  it('refuses at write time an event whose words pass the limit only with their positions, rather than accepting one it can never capture', async () => {
    const answer = await writeInbound(t, ops, [failed('TX-POSITIONS', { text: manyWords })]);
    const written = answer.statusCode;
    // Accepted, the exception would never be captured: its insert fails on every delivery.
    const detail = await send(t.app, 'GET', '/api/v1/exceptions/TX-POSITIONS', ops.operator);
    expect({ written, detail: detail.statusCode }).toEqual({ written: 422, detail: 404 });
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expect(answer.json().errors).toEqual([expect.objectContaining({ pointer: '/messages/0/payload' })]);
  });
});
