import { describe, expect, it } from 'vitest';
import { invalidUtf8Offset, jsonProblem, MAX_JSON_DEPTH } from './json-guard.ts';
import { isStorableTimestamp } from './timestamps.ts';

const nested = (levels: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
};

describe('jsonProblem', () => {
  it('passes ordinary JSON values', () => {
    for (const value of [
      null,
      0,
      -0,
      1.5e308,
      'text 😀',
      [],
      {},
      { a: [{ b: 'c' }] },
      nested(MAX_JSON_DEPTH),
    ]) {
      expect(jsonProblem(value)).toBeUndefined();
    }
  });

  it('names the first flaw by its JSON pointer, escaping ~ and / in keys', () => {
    const at = (value: unknown) => {
      const problem = jsonProblem(value);
      return problem && [problem.code, problem.extras.errors?.[0]?.pointer];
    };
    expect(at({ 'a/b~c': { x: 'ok\u0000' } })).toEqual(['VALIDATION_FAILED', '/a~1b~0c/x']);
    expect(at({ list: [1, 2, '\udc00'] })).toEqual(['INVALID_UNICODE', '/list/2']);
    expect(at({ ['\ud800']: 1 })).toEqual(['INVALID_UNICODE', '/\ud800']);
    expect(at({ n: [Number.NEGATIVE_INFINITY] })).toEqual(['NUMBER_OUT_OF_RANGE', '/n/0']);
    expect(at(Number.POSITIVE_INFINITY)).toEqual(['NUMBER_OUT_OF_RANGE', '']);
    expect(at(nested(MAX_JSON_DEPTH + 1))).toEqual(['JSON_TOO_DEEP', '/0'.repeat(MAX_JSON_DEPTH)]);
  });

  it('walks 100,000 levels without overflowing the stack', () => {
    expect(jsonProblem(nested(100_000))?.code).toBe('JSON_TOO_DEEP');
  });

  it('names the request part it was given', () => {
    expect(jsonProblem({ cursor: 'a\u0000' }, 'query')?.extras.errors).toEqual([
      { in: 'query', pointer: '/cursor', message: 'must not contain U+0000' },
    ]);
  });
});

describe('invalidUtf8Offset', () => {
  it('finds the first byte that does not start or continue valid UTF-8', () => {
    const bytes = (...parts: (string | number[])[]) =>
      Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
    expect(invalidUtf8Offset(bytes('ö😀 fine'))).toBe(-1);
    expect(invalidUtf8Offset(bytes('ab', [0xed, 0xa0, 0x80]))).toBe(2); // an encoded surrogate
    expect(invalidUtf8Offset(bytes('ab', [0xc0, 0xaf]))).toBe(2); // an overlong slash
    expect(invalidUtf8Offset(bytes('abc', [0xf0, 0x9f]))).toBe(3); // cut short
    expect(invalidUtf8Offset(bytes([0xff]))).toBe(0);
  });
});

describe('isStorableTimestamp', () => {
  it('accepts what PostgreSQL timestamptz stores as it is and Date reads as the same instant', () => {
    for (const text of [
      '0001-01-01T00:00:00Z',
      '9999-12-31T23:59:59.999999Z',
      '2024-02-29T12:00:00+15:59',
      '2024-01-01 00:00:00-01:00',
      '2024-01-01t00:00:00.5+0100',
    ]) {
      expect(isStorableTimestamp(text), text).toBe(true);
    }
  });

  it('refuses year 0, expanded years, impossible days and times, and offsets of 16 hours', () => {
    for (const text of [
      '0000-01-01T00:00:00Z',
      '+275760-09-13T00:00:00.000Z',
      '-000001-01-01T00:00:00Z',
      '2023-02-29T00:00:00Z',
      '2024-04-31T00:00:00Z',
      '2024-01-01T24:00:00Z',
      '2024-01-01T12:00:60Z',
      '2024-01-01T00:00:00+16:00',
      '2024-01-01T00:00:00',
      '2024-01-01',
    ]) {
      expect(isStorableTimestamp(text), text).toBe(false);
    }
  });

  it('refuses what Date cannot read (a leap second, an offset of hours alone) and instants an offset takes out of the years 0001 to 9999', () => {
    for (const text of [
      '2016-12-31T23:59:60Z',
      '2016-12-31T23:59:60.5Z',
      '2024-01-01T00:00:00+01',
      '0001-01-01T00:00:00+01:00',
      '9999-12-31T23:59:59-01:00',
    ]) {
      expect(isStorableTimestamp(text), text).toBe(false);
    }
  });
});
