import { sql } from 'kysely';
import type { ExceptionsTrx } from './tables.ts';

/**
 * Runs `fn` (statements reading a group's exceptions newest first, with a limit) with sequential
 * scans, bitmap scans and sorts off, then puts the three settings back as they were, in the
 * caller's transaction. The planner estimates a group's rows as the average group's (the group is
 * a parameter, a lateral's), so for a big group it would read every row of the group, or of a
 * small tenant (a bitmap of exceptions_first_seen), and sort them to keep the limit: measured in
 * rate-rules.test.ts, where a count meant to read 40 index entries read 480, and an impact meant
 * to read 101 read 6,250. Off, the one cheap plan left is exceptions_group_seen in its order
 * (migration 0045), which stops at the limit.
 */
export async function inGroupOrder<T>(trx: ExceptionsTrx, fn: () => Promise<T>): Promise<T> {
  const { rows } = await sql<{ seq: string; bitmap: string; sort: string }>`
    select s.seq, s.bitmap, s.sort, set_config('enable_seqscan', 'off', true),
      set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)
    from (
      select current_setting('enable_seqscan') as seq, current_setting('enable_bitmapscan') as bitmap,
        current_setting('enable_sort') as sort
      offset 0
    ) as s`.execute(trx);
  const was = rows[0]!;
  try {
    return await fn();
  } finally {
    await sql`select set_config('enable_seqscan', ${was.seq}, true),
      set_config('enable_bitmapscan', ${was.bitmap}, true), set_config('enable_sort', ${was.sort}, true)`.execute(
      trx,
    );
  }
}
