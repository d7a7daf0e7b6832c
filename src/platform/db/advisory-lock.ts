import { type QueryExecutorProvider, sql } from 'kysely';

/**
 * Takes the transaction-scoped advisory lock named `name` (its 64-bit hash), held to the commit or
 * rollback: what serialises a check and the write it guards (a count under a limit, the one
 * default, a sum under a total) where no row is there to lock. Name it after the table and the
 * scope, e.g. `catalog.categories:<tenant>`.
 */
export async function lockNamed(trx: QueryExecutorProvider, name: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtextextended(${name}, 0))`.execute(trx);
}
