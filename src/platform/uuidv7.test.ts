import { describe, expect, it } from 'vitest';
import { createUuidV7, uuidv7Floor } from './uuidv7.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const msOf = (id: string) => Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);

describe('uuidv7', () => {
  it('makes RFC 9562 version 7 ids carrying the time, strictly increasing and unique', () => {
    const next = createUuidV7();
    const before = Date.now();
    const ids = Array.from({ length: 100_000 }, next);
    const after = Date.now();
    for (const id of ids) expect(id).toMatch(UUID_V7);
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    expect(msOf(ids[0]!)).toBeGreaterThanOrEqual(before);
    expect(msOf(ids.at(-1)!)).toBeLessThanOrEqual(after + 100);
  });

  it('keeps increasing when the clock steps back or thousands of ids share a millisecond', () => {
    let clock = 1_700_000_000_000;
    const next = createUuidV7(() => clock);
    const ids = Array.from({ length: 10_000 }, next);
    clock -= 5_000;
    ids.push(...Array.from({ length: 100 }, next));
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    // 10,100 ids in one millisecond borrow the next few, no more.
    expect(msOf(ids.at(-1)!) - 1_700_000_000_000).toBeLessThan(10);
  });

  it('draws its random bits from the source it is given', () => {
    const zeros = createUuidV7(
      () => 0,
      (bytes) => bytes.fill(0),
    );
    expect(zeros()).toBe('00000000-0000-7000-8000-000000000000');
    expect(zeros()).toBe('00000000-0000-7001-8000-000000000000');
  });
});

describe('uuidv7Floor', () => {
  it('bounds the ids of a millisecond: none minted then or later is below it, none minted before reaches it', () => {
    const at = Date.parse('2026-12-06T10:00:00.123Z');
    for (const ms of [at - 1, at, at + 1]) {
      const ids = Array.from(
        { length: 50 },
        createUuidV7(() => ms),
      );
      for (const id of ids) {
        expect(id >= uuidv7Floor(ms) && id < uuidv7Floor(ms + 1), id).toBe(true);
      }
    }
    expect(uuidv7Floor(-5)).toBe('00000000-0000-0000-0000-000000000000');
  });
});
