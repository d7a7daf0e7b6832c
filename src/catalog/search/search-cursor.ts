import {
  cursorId,
  cursorText,
  encodeCursor,
  invalidCursor,
  isStorableTimestamp,
} from '../../platform/http/index.ts';
import { MAX_QUERY_WORDS, WORD_PATTERN } from './query-text.ts';

export const SORTS = ['relevance', 'price_asc', 'price_desc', 'newest'] as const;
export type Sort = (typeof SORTS)[number];

/**
 * Where the next page starts: the sort key and id of the last row shown (keyset paging, so a
 * page never repeats or skips a row of an unchanged catalog), plus the word groups the first
 * page searched (typo corrections included), so every page searches the same thing.
 */
export type SearchCursor = {
  sort: Sort;
  key: number | string;
  id: string;
  groups?: string[][] | undefined;
};

export function writeCursor(cursor: SearchCursor): string {
  return encodeCursor(JSON.stringify({ s: cursor.sort, k: cursor.key, i: cursor.id, g: cursor.groups }));
}

const WORD = new RegExp(`^${WORD_PATTERN}$`, 'u');

function readGroups(value: unknown): string[][] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_QUERY_WORDS)
    throw invalidCursor('bad words');
  return value.map((group) => {
    if (!Array.isArray(group) || group.length === 0 || group.length > 4) throw invalidCursor('bad words');
    return group.map((word) => {
      if (typeof word !== 'string' || !WORD.test(word)) throw invalidCursor('bad words');
      return word;
    });
  });
}

/** The cursor of a page of this sort, or 400 INVALID_CURSOR. */
export function readCursor(text: string, sort: Sort): SearchCursor {
  let parsed: unknown;
  try {
    parsed = JSON.parse(cursorText(text));
  } catch (error) {
    if (error instanceof SyntaxError) throw invalidCursor('not JSON');
    throw error;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalidCursor('not an object');
  const { s, k, i, g } = parsed as Record<string, unknown>;
  if (s !== sort) throw invalidCursor(`it pages another sort than ${sort}`);
  const id = cursorId(i);
  if (sort === 'newest') {
    if (typeof k !== 'string' || !isStorableTimestamp(k)) throw invalidCursor('bad time');
  } else if (sort === 'relevance') {
    // A rank is a PostgreSQL real: a number that rounds to 0 as one (below 1.4e-45) is out of its
    // range, and the query's cast of it failed (500).
    if (typeof k !== 'number' || !Number.isFinite(k) || k < 0 || k > 1e6 || (k !== 0 && Math.fround(k) === 0))
      throw invalidCursor('bad rank');
  } else if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 0) throw invalidCursor('bad price');
  return { sort, key: k as number | string, id, groups: readGroups(g) };
}
