import { sql } from 'kysely';
import type { Trx } from './search-query.ts';

/** How alike (pg_trgm similarity, 0 to 1) a dictionary word must be to stand in for a typo: 'iphnoe' and 'iphone' are 0.27. */
export const SIMILARITY_THRESHOLD = 0.25;
/** Corrections tried per word, most similar first. */
const PER_WORD = 3;

/**
 * Dictionary words (the tenant's active titles, tags, categories, attribute values) that look
 * like each word of the query no dictionary word equals: trigram similarity on a GIN index over
 * a few thousand distinct words, not over every product. Words shorter than 3 letters are left
 * alone (too few trigrams to tell anything).
 */
export async function correctWords(
  trx: Trx,
  tenantId: string,
  words: string[],
): Promise<Map<string, string[]>> {
  const candidates = [...new Set(words.filter((w) => w.length >= 3 && !/^\d+$/.test(w)))];
  const found = new Map<string, string[]>();
  if (candidates.length === 0) return found;
  await sql`select set_config('pg_trgm.similarity_threshold', ${String(SIMILARITY_THRESHOLD)}, true)`.execute(
    trx,
  );
  const rows = (
    await sql<{ word: string; term: string }>`select w.word, c.term
      from unnest(${candidates}::text[]) as w (word)
      cross join lateral (
        select t.term from (
          select distinct s.term from catalog.tenant_search_terms s where s.tenant_id = ${tenantId} and s.term % w.word
        ) t
        order by similarity(t.term, w.word) desc, t.term limit ${PER_WORD}
      ) c
      where not exists (
        select 1 from catalog.tenant_search_terms e where e.tenant_id = ${tenantId} and e.term = w.word
      )`.execute(trx)
  ).rows;
  for (const { word, term } of rows) {
    const list = found.get(word);
    if (list) list.push(term);
    else found.set(word, [term]);
  }
  return found;
}
