import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKeyOf, asTenant, customerOf, seedExceptions } from './exceptions-seed-fixtures.ts';
import {
  createOpsTenant,
  type ExceptionsTestApp,
  type OpsTenant,
  send,
  startExceptionsApp,
} from './exceptions-test-fixtures.ts';
import { filterSql } from './filters.ts';
import { probeQueryOf } from './search.ts';
import { searchWindow } from './search-window.ts';

let t: ExceptionsTestApp;
let a: OpsTenant;
let b: OpsTenant;
const base = Date.now() - 60_000;
const at = (minutesAgo: number) => new Date(base - minutesAgo * 60_000);

beforeAll(async () => {
  t = await startExceptionsApp();
  [a, b] = [await createOpsTenant(t, 'exs-a'), await createOpsTenant(t, 'exs-b')];
  await seedExceptions(t, a.id, [
    {
      transactionId: 'TX-1001',
      externalId: 'EXT-77',
      reason: 'Gateway timeout while reserving stock',
      category: 'TIMEOUT',
      customerId: 'cust-42',
      lastSeen: at(1),
    },
    {
      transactionId: 'TX-1002',
      reason: 'Address failed validation: postal code missing',
      category: 'VALIDATION',
      severity: 'LOW',
      locationCode: 'WH-BERLIN',
      payload: { order: { note: 'deliver to the Frobnicator depot', total: 4711 } },
      lastSeen: at(2),
    },
    {
      transactionId: 'TX-1003',
      reason: 'Collection rejected by the bank',
      interfaceType: 'COLLECTION',
      lastSeen: at(3),
    },
    // "alpha" in an id (weight A) outranks "alpha" in a reason (weight B), though seen earlier.
    { transactionId: 'TX-ALPHA', reason: 'Carrier refused the parcel', lastSeen: at(30) },
    { transactionId: 'TX-2001', reason: 'Alpha carrier refused the parcel', lastSeen: at(4) },
    ...Array.from({ length: 7 }, (_, i) => ({
      transactionId: `TX-30${i}`,
      reason: `Upstream timeout number ${i}`,
      severity: i % 2 === 0 ? ('HIGH' as const) : ('LOW' as const),
      lastSeen: at(10 + i),
    })),
  ]);
  await seedExceptions(t, b.id, [
    { transactionId: 'TX-B-1', reason: 'Gateway timeout at the other shop', customerId: 'cust-42' },
    // An inbound event's payload repeats its columns; this one's customerId differs from the column.
    {
      transactionId: 'TX-B-2',
      reason: 'Quokka feed rejected',
      customerId: 'cust-b-9',
      payload: {
        transactionId: 'TX-B-2',
        reason: 'Quokka feed rejected',
        customerId: 'cust-wombat',
        note: 'platypus',
      },
    },
  ]);
});
afterAll(() => t?.close());

type Hit = { transactionId: string; rank: number };
type Page = { items: Hit[]; nextCursor: string | null; truncated: boolean };

async function search(query: string, headers = a.operator): Promise<Page> {
  const answer = await send(t.app, 'GET', `/api/v1/exceptions/search?${query}`, headers);
  expect(answer.statusCode, answer.body).toBe(200);
  return answer.json<Page>();
}
const found = async (q: string, headers = a.operator) =>
  (await search(`q=${encodeURIComponent(q)}&limit=100`, headers)).items.map((i) => i.transactionId);

describe('GET /exceptions/search', () => {
  it('finds by reason words, stemmed as English', async () => {
    expect(await found('timeouts')).toEqual(['TX-1001', ...Array.from({ length: 7 }, (_, i) => `TX-30${i}`)]);
    expect(await found('validating postal')).toEqual(['TX-1002']);
  });

  it('finds by transaction id, external id, customer id and location', async () => {
    expect(await found('TX-1001')).toEqual(['TX-1001']);
    expect(await found('tx-1003')).toEqual(['TX-1003']);
    expect(await found('EXT-77')).toEqual(['TX-1001']);
    expect(await found('cust-42')).toEqual(['TX-1001']);
    expect(await found('WH-BERLIN')).toEqual(['TX-1002']);
  });

  it("finds by the payload's text and numbers", async () => {
    expect(await found('frobnicator')).toEqual(['TX-1002']);
    expect(await found('4711')).toEqual(['TX-1002']);
  });

  it("reads a payload field equal to its column once, at the column's weight, and one that differs as payload text", async () => {
    expect(await found('quokka', b.operator)).toEqual(['TX-B-2']);
    expect(await found('TX-B-2', b.operator)).toEqual(['TX-B-2']);
    expect(await found('cust-b-9', b.operator)).toEqual(['TX-B-2']);
    expect(await found('cust-wombat', b.operator)).toEqual(['TX-B-2']);
    expect(await found('platypus', b.operator)).toEqual(['TX-B-2']);
    const lexemes = await asTenant(t, b.id, async (trx) => {
      const { rows } = await sql<{ lexeme: string; weights: string[] }>`
        select lexeme, weights from exceptions.tenant_exceptions, unnest(search)
        where transaction_id = 'TX-B-2'`.execute(trx);
      return new Map(rows.map((r) => [r.lexeme, [...r.weights].sort().join('')]));
    });
    // The reason's words and the ids only as their columns (B, A), not again from the payload (C).
    expect(lexemes.get('quokka')).toBe('B');
    expect(lexemes.get('tx')).toBe('A');
    expect(lexemes.get('wombat')).toBe('C');
    expect(lexemes.get('platypus')).toBe('C');
  });

  it('reads web search syntax: phrases, or, and -excluded words', async () => {
    expect(await found('"rejected by the bank"')).toEqual(['TX-1003']);
    expect(await found('"bank rejected"')).toEqual([]);
    expect((await found('bank or frobnicator')).sort()).toEqual(['TX-1002', 'TX-1003']);
    expect(await found('timeout -gateway')).toEqual(Array.from({ length: 7 }, (_, i) => `TX-30${i}`));
  });

  it('shows matches newest first by default, and ranks a match in an id above one in a reason with sort=relevance', async () => {
    const newest = await search('q=alpha');
    expect(newest.items.map((i) => i.transactionId)).toEqual(['TX-2001', 'TX-ALPHA']);
    expect(newest.items[1]!.rank).toBeGreaterThan(newest.items[0]!.rank);
    const ranked = await search('q=alpha&sort=relevance');
    expect(ranked.items.map((i) => i.transactionId)).toEqual(['TX-ALPHA', 'TX-2001']);
    expect(ranked.items[0]!.rank).toBeGreaterThan(ranked.items[1]!.rank);
    expect(ranked.truncated).toBe(false);
  });

  it('pages through every ranked match once with sort=relevance, and refuses a cursor of the other sort', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await search(
        `q=timeout&sort=relevance&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      seen.push(...page.items.map((i) => i.transactionId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(
      (await search('q=timeout&sort=relevance&limit=100')).items.map((i) => i.transactionId),
    );
    expect(new Set(seen).size).toBe(8);
    const ranked = (await search('q=timeout&sort=relevance&limit=1')).nextCursor!;
    const newest = (await search('q=timeout&limit=1')).nextCursor!;
    for (const [sort, cursor] of [
      ['newest', ranked],
      ['relevance', newest],
    ]) {
      const answer = await send(
        t.app,
        'GET',
        `/api/v1/exceptions/search?q=timeout&sort=${sort}&cursor=${encodeURIComponent(cursor!)}`,
        a.operator,
      );
      expect(answer.statusCode, answer.body).toBe(400);
      expect(answer.json().code).toBe('INVALID_CURSOR');
    }
  });

  it('pages through every match once, and takes the list filters', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await search(
        `q=timeout&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      seen.push(...page.items.map((i) => i.transactionId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(await found('timeout'));
    expect(new Set(seen).size).toBe(8);
    const high = (await search('q=timeout&severity=HIGH&limit=100')).items.map((i) => i.transactionId);
    expect(high).toEqual(['TX-300', 'TX-302', 'TX-304', 'TX-306']);
    const old = (await search(`q=timeout&to=${at(11).toISOString()}`)).items.map((i) => i.transactionId);
    expect(old).toEqual(['TX-302', 'TX-303', 'TX-304', 'TX-305', 'TX-306']);
  });

  it("never finds another tenant's exceptions", async () => {
    expect(await found('gateway')).toEqual(['TX-1001']);
    expect(await found('gateway', b.operator)).toEqual(['TX-B-1']);
    expect(await found('TX-1001', b.operator)).toEqual([]);
    expect(await found('frobnicator', b.operator)).toEqual([]);
  });

  it("reads through a view that shows the transaction's tenant only, whatever the query asks", async () => {
    const seen = await asTenant(t, b.id, async (trx) => {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from exceptions.tenant_exceptions where tenant_id = ${a.id}`.execute(trx);
      return rows[0]!.n;
    });
    expect(seen).toBe(0);
  });

  it('answers 400 for a missing, blank or over-long q, and a bad cursor or filter', async () => {
    for (const [query, pointer] of [
      ['', '/q'],
      ['q=', '/q'],
      ['q=%20%20', '/q'],
      [`q=${'a'.repeat(201)}`, '/q'],
      ['q=timeout&cursor=abc', '/cursor'],
      ['q=timeout&status=SOLVED', '/status'],
      ['q=timeout&limit=500', '/limit'],
    ]) {
      const answer = await send(t.app, 'GET', `/api/v1/exceptions/search?${query}`, a.operator);
      expect(answer.statusCode, query).toBe(400);
      expect(
        answer.json().errors.map((e: { pointer: string }) => e.pointer),
        query,
      ).toContain(pointer);
    }
  });

  it('answers 400 INVALID_CURSOR for a forged ranked cursor whose rank a real cannot hold, never a 500', async () => {
    for (const r of [1e-50, 5e-324]) {
      const forged = Buffer.from(
        JSON.stringify({ r, t: new Date(base).toISOString(), i: '01890000-0000-7000-8000-000000000000' }),
      ).toString('base64url');
      const answer = await send(
        t.app,
        'GET',
        `/api/v1/exceptions/search?q=timeout&sort=relevance&cursor=${forged}`,
        a.operator,
      );
      expect(answer.statusCode, `${r} ${answer.body}`).toBe(400);
      expect(answer.json().code).toBe('INVALID_CURSOR');
    }
  });

  it('refuses a leap second and an offset of hours alone in from and to (400), and keeps its time slices in the year 0001', async () => {
    const to = (text: string) => `&to=${encodeURIComponent(text)}`;
    for (const sort of ['newest', 'relevance']) {
      for (const end of ['2016-12-31T23:59:60Z', '2016-12-31T23:59:60.5Z', '2024-01-01T00:00:00+01']) {
        const refused = await send(
          t.app,
          'GET',
          `/api/v1/exceptions/search?q=quokka&sort=${sort}${to(end)}`,
          a.operator,
        );
        expect(refused.statusCode, refused.body).toBe(400);
        expect(refused.json().errors.map((e: { pointer: string }) => e.pointer)).toEqual(['/to']);
      }
      // A rare word reads the time slices before `to`: a month back, never before the year 0001.
      for (const q of ['quokka', 'timeout'])
        for (const end of ['0001-01-01T00:00:01Z', '0001-01-05T00:00:00Z', '0001-03-05T00:00:00Z'])
          expect((await search(`q=${q}&sort=${sort}${to(end)}`)).items).toEqual([]);
    }
  });

  it('is for operators and admins, or a key with exceptions:read', async () => {
    const url = '/api/v1/exceptions/search?q=timeout';
    expect((await send(t.app, 'GET', url, a.admin)).statusCode).toBe(200);
    expect((await send(t.app, 'GET', url, await apiKeyOf(t, a, ['exceptions:read']))).statusCode).toBe(200);
    expect((await send(t.app, 'GET', url, a.staff)).statusCode).toBe(403);
    expect((await send(t.app, 'GET', url, await customerOf(t, a))).statusCode).toBe(403);
    expect((await send(t.app, 'GET', url, {})).statusCode).toBe(401);
  });
});

describe('the window of newest matches a search ranks', () => {
  it('is the newest matches whichever step finds them: the walk, the last day, the probe or the wider slices', async () => {
    const day = 86_400_000;
    const words = (i: number) =>
      ['zebra', i % 2 === 0 && 'okapi', i % 10 === 3 && 'lemur', i === 42 && 'quokka', i >= 40 && 'gnu']
        .filter(Boolean)
        .join(' ');
    await seedExceptions(
      t,
      a.id,
      Array.from({ length: 60 }, (_, i) => ({
        transactionId: `W-${i}`,
        customerId: 'window',
        reason: `Seen with ${words(i)}`,
        lastSeen: new Date(base - i * day - 3_600_000),
      })),
    );
    await seedExceptions(
      t,
      a.id,
      Array.from({ length: 16 }, (_, j) => ({
        transactionId: `D-${j}`,
        customerId: 'window',
        reason: `Seen today with zebra${j >= 10 ? ' ibis' : ''}`,
        lastSeen: new Date(base - j * 60_000),
      })),
    );
    // Small bounds, so that a few rows reach every step: zebra fills the walk, ibis the last day
    // (though not the newest 10 rows), okapi the month, lemur and quokka are found by the probe,
    // gnu (in old rows only) by the last slice.
    const limits = { window: 5, walk: 10, probe: 8 };
    for (const word of ['zebra', 'ibis', 'okapi', 'lemur', 'quokka', 'gnu']) {
      const query = sql`(websearch_to_tsquery('simple', ${word}) || websearch_to_tsquery('english', ${word}))`;
      const where = filterSql(a.id, { customerId: 'window' });
      const [found, wanted] = await asTenant(t, a.id, async (trx) => [
        await searchWindow(trx, where, query, base, limits),
        (
          await sql<{ id: string }>`select id from exceptions.exceptions where ${where} and search @@ ${query}
            order by last_seen desc, id desc limit 6`.execute(trx)
        ).rows.map((r) => r.id),
      ]);
      expect(found, word).toEqual({ ids: wanted.slice(0, 5), truncated: wanted.length > 5 });
    }
  });

  it('probes an id by the lexemes with a digit, rechecks the whole query, and goes on when the probe is full', async () => {
    const day = 86_400_000;
    await seedExceptions(t, a.id, [
      // '-77' is in every row, 'q' <-> '-77' in one; '-5' in two, one of them an order id.
      ...Array.from({ length: 12 }, (_, i) => ({
        transactionId: `P-77-${i}`,
        customerId: 'probe',
        reason: 'Seen in a batch',
        lastSeen: new Date(base - i * day - 7_200_000),
      })),
      {
        transactionId: 'Q-77',
        customerId: 'probe',
        reason: 'Seen alone',
        lastSeen: new Date(base - 40 * day),
      },
      {
        transactionId: 'R-5',
        customerId: 'probe',
        reason: 'Seen alone',
        orderId: 'ORD-5',
        lastSeen: new Date(base - 3 * day),
      },
    ]);
    const limits = { window: 3, walk: 2, probe: 8, probeFirst: true };
    for (const word of ['Q-77', 'P-77-3', 'ORD-5', 'r-5 alone', 'P-77', '-77', '"P-77" 5', 'q-77 or r-5']) {
      const query = sql`(websearch_to_tsquery('simple', ${word}) || websearch_to_tsquery('english', ${word}))`;
      const where = filterSql(a.id, { customerId: 'probe' });
      const [found, wanted] = await asTenant(t, a.id, async (trx) => [
        await searchWindow(trx, where, query, base, limits, probeQueryOf(word, query)),
        (
          await sql<{ id: string }>`select id from exceptions.exceptions where ${where} and search @@ ${query}
            order by last_seen desc, id desc limit 4`.execute(trx)
        ).rows.map((r) => r.id),
      ]);
      expect(found, word).toEqual({ ids: wanted.slice(0, 3), truncated: wanted.length > 3 });
    }
    expect(await found('Q-77')).toEqual(['Q-77']);
  });

  it('pages newest first through every match, the keyset narrowing each step', async () => {
    for (const [word, probeFirst] of ['zebra', 'ibis', 'okapi', 'lemur', 'gnu'].flatMap((w) => [
      [w, false] as const,
      [w, true] as const,
    ])) {
      const limits = { window: 3, walk: 10, probe: 8, probeFirst };
      const query = sql`(websearch_to_tsquery('simple', ${word}) || websearch_to_tsquery('english', ${word}))`;
      const where = filterSql(a.id, { customerId: 'window' });
      const [pages, all] = await asTenant(t, a.id, async (trx) => {
        const shown: string[] = [];
        for (let last: string | undefined, more = true; more; ) {
          const narrowed = last
            ? sql`${where} and (last_seen, id) < (select e.last_seen, e.id from exceptions.exceptions e where e.id = ${last})`
            : where;
          const page = await searchWindow(trx, narrowed, query, base, limits);
          shown.push(...page.ids);
          [last, more] = [page.ids.at(-1), page.truncated];
        }
        const { rows } = await sql<{ id: string }>`select id from exceptions.exceptions
          where ${where} and search @@ ${query} order by last_seen desc, id desc`.execute(trx);
        return [shown, rows.map((r) => r.id)];
      });
      expect(pages, `${word}, probe first: ${probeFirst}`).toEqual(all);
      expect(all.length, word).toBeGreaterThan(0);
    }
  });
});
