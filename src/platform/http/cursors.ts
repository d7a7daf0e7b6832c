import { isUtf8 } from 'node:buffer';
import { AppError } from './errors.ts';

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** 400 INVALID_CURSOR naming ?cursor and what is wrong with it. */
export function invalidCursor(why: string): AppError {
  return new AppError('INVALID_CURSOR', `cursor is not one this API issued: ${why}`, {
    errors: [{ in: 'query', pointer: '/cursor', message: `is not a valid cursor (${why})` }],
  });
}

/** A page cursor: text, as unpadded base64url of its UTF-8. */
export const encodeCursor = (text: string): string => Buffer.from(text, 'utf8').toString('base64url');

/**
 * The text inside a cursor, or 400 INVALID_CURSOR: strict base64url of UTF-8, as encodeCursor
 * writes it (Node's decoder skips any character it does not know, so a forged cursor could
 * otherwise decode to anything). What the text holds is the caller's to check.
 */
export function cursorText(cursor: string): string {
  const bytes = Buffer.from(cursor, 'base64url');
  if (!BASE64URL.test(cursor) || bytes.toString('base64url') !== cursor) throw invalidCursor('not base64url');
  if (!isUtf8(bytes)) throw invalidCursor('not UTF-8');
  return bytes.toString('utf8');
}

/** value when it is a row id as this API writes one into a cursor (a lower-case UUID), else 400 INVALID_CURSOR. */
export function cursorId(value: unknown): string {
  if (typeof value !== 'string' || !ID.test(value)) throw invalidCursor('not an id');
  return value;
}
