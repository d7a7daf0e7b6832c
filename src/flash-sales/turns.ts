import { sql } from 'kysely';

/** Where one pass reads: ids after `after`, or up to and including `upTo`. */
export type Range = { after?: string; upTo?: string };

/** The SQL condition (`and …`) that keeps a uuid column in the range. */
export const inRange = (column: string, { after, upTo }: Range) =>
  sql`${after === undefined ? sql`` : sql`and ${sql.ref(column)} > ${after}::uuid`}
    ${upTo === undefined ? sql`` : sql`and ${sql.ref(column)} <= ${upTo}::uuid`}`;

/** A pass's rows, and the id the next pass starts after (undefined: from the first). */
export type Turn<T> = { rows: T[]; next: string | undefined };

/**
 * One bounded pass that takes turns: the next `limit` rows in id order after the last pass's,
 * wrapping around to the first ones when fewer are left (each row once a pass), and where the
 * next pass starts (after its last row; from the first once a pass found fewer than `limit`).
 */
export async function inTurn<T>(
  after: string | undefined,
  limit: number,
  read: (range: Range, limit: number) => Promise<T[]>,
  idOf: (row: T) => string,
): Promise<Turn<T>> {
  const rows = await read({ after }, limit);
  if (after !== undefined && rows.length < limit)
    rows.push(...(await read({ upTo: after }, limit - rows.length)));
  return { rows, next: rows.length < limit ? undefined : idOf(rows.at(-1)!) };
}
