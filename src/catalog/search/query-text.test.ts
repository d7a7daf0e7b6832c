import { describe, expect, it } from 'vitest';
import { queryWords, tsqueryText, wordsOf } from './query-text.ts';
import { readCursor, writeCursor } from './search-cursor.ts';

describe('query words', () => {
  it('are lower-cased runs of letters and digits; everything else separates', () => {
    expect(wordsOf("iPhone 15 Pro's case!")).toEqual(['iphone', '15', 'pro', 's', 'case']);
    expect(wordsOf("laptop' | 'phone & !(x)")).toEqual(['laptop', 'phone', 'x']);
    expect(wordsOf('Crème brûlée Ｔｏｒｃｈ')).toEqual(['crème', 'brûlée', 'torch']);
  });

  it('keep at most 8 words of at most 40 letters', () => {
    expect(queryWords('a b c d e f g h i j')).toHaveLength(8);
    expect(queryWords('x'.repeat(100))[0]).toHaveLength(40);
  });

  it('keep the combining marks of their letters, as PostgreSQL reads the documents', () => {
    expect(wordsOf('हिन्दी साड़ी')).toEqual(['हिन्दी', 'साड़ी']);
    expect(wordsOf('สวัสดี')).toEqual(['สวัสดี']);
    // A mark with no letter before it separates, as punctuation does.
    expect(wordsOf('\u0301a \u0301')).toEqual(['a']);
  });

  it('cut a long word at 40 characters, never inside a surrogate pair', () => {
    const [word] = queryWords(`${'字'.repeat(39)}𠀀𠀁`);
    expect(word).toBe(`${'字'.repeat(39)}𠀀`);
    expect(word!.isWellFormed()).toBe(true);
  });
});

describe('tsquery text', () => {
  it('ANDs the words, ORs corrections, and makes the last word a prefix', () => {
    expect(tsqueryText([['red'], ['iphnoe', 'iphone']])).toBe("'red' & ('iphnoe':* | 'iphone':*)");
    expect(tsqueryText([['lap']], { prefixLast: true, weight: 'A' })).toBe("'lap':*A");
    expect(tsqueryText([['a'], ['b']], { prefixLast: false })).toBe("'a' & 'b'");
  });
});

describe('search cursors', () => {
  const id = '01a232b2-40f3-7596-8a8a-45b345a8ce7d';

  it('round-trip the sort key, id and searched words', () => {
    const cursor = { sort: 'relevance' as const, key: 0.0607927, id, groups: [['iphnoe', 'iphone']] };
    expect(readCursor(writeCursor(cursor), 'relevance')).toEqual(cursor);
  });

  it('carry the words of any query to the next page, in any script', () => {
    const groups = queryWords(`साड़ी ${'字'.repeat(39)}𠀀𠀁`).map((w) => [w]);
    const cursor = { sort: 'relevance' as const, key: 1, id, groups };
    expect(readCursor(writeCursor(cursor), 'relevance')).toEqual(cursor);
  });

  it.each([
    [
      'another sort',
      () => readCursor(writeCursor({ sort: 'newest', key: new Date().toISOString(), id }), 'price_asc'),
    ],
    ['a bad price', () => readCursor(writeCursor({ sort: 'price_asc', key: -1, id }), 'price_asc')],
    [
      'a bad time',
      () => readCursor(writeCursor({ sort: 'newest', key: '0000-01-01T00:00:00Z', id }), 'newest'),
    ],
    ['a bad id', () => readCursor(writeCursor({ sort: 'price_asc', key: 1, id: 'x' }), 'price_asc')],
    [
      'words with syntax',
      () => readCursor(writeCursor({ sort: 'relevance', key: 1, id, groups: [["a'|b"]] }), 'relevance'),
    ],
    ['not base64url', () => readCursor('!!!', 'newest')],
  ])('refuse %s', (_, read) => {
    expect(read).toThrow(/cursor/);
  });
});
