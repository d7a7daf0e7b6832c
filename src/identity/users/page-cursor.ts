import { Type } from 'typebox';
import { cursorId, cursorText, encodeCursor } from '../../platform/http/index.ts';

/** Query parameters of a cursor-paginated list. */
export const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Page size (Default: 20)' })),
  cursor: Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'The nextCursor of the previous page' }),
  ),
};

/** The envelope of a cursor-paginated list of item. */
export function PageOf<T extends Parameters<typeof Type.Array>[0]>(item: T) {
  return Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });
}

const DEFAULT_LIMIT = 20;

/** Decodes ?limit and ?cursor; a cursor we did not issue is a 400 INVALID_CURSOR naming /cursor. */
export function readPage(query: { limit?: number; cursor?: string }): {
  limit: number;
  after: string | undefined;
} {
  const limit = query.limit ?? DEFAULT_LIMIT;
  if (query.cursor === undefined) return { limit, after: undefined };
  return { limit, after: cursorId(cursorText(query.cursor)) };
}

/**
 * Builds a page from rows fetched with limit + 1 (ordered by id): the extra row only proves
 * there is a next page, and the cursor is the last returned id, opaque to clients.
 */
export function toPage<T extends { id: string }>(
  rows: T[],
  limit: number,
): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  const nextCursor = rows.length > limit && last ? encodeCursor(last.id) : null;
  return { items, nextCursor };
}
