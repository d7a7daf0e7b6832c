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

/**
 * lockNamed's shared form: any number of transactions hold it together, while lockNamed of the
 * same name waits for them all (and they for it). For writers that may run side by side but must
 * not overlap one kind of writer, e.g. `catalog.stock-flags:<tenant>`.
 */
export async function lockNamedShared(trx: QueryExecutorProvider, name: string): Promise<void> {
  await sql`select pg_advisory_xact_lock_shared(hashtextextended(${name}, 0))`.execute(trx);
}

/** lockNamed without waiting: takes it and answers true, or answers false when another holds it. */
export async function tryLockNamed(trx: QueryExecutorProvider, name: string): Promise<boolean> {
  const { rows } = await sql<{ locked: boolean }>`
    select pg_try_advisory_xact_lock(hashtextextended(${name}, 0)) as locked`.execute(trx);
  return rows[0]?.locked === true;
}
