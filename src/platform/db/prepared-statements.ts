import { createHash } from 'node:crypto';
import type pg from 'pg';

/** Distinct statements one connection prepares at most; past that, they run unprepared. */
export const MAX_PREPARED_PER_CONNECTION = 1000;

/** PostgreSQL's answer to a prepared statement whose table changed shape (a migration meanwhile). */
const isStalePlan = (error: unknown) =>
  (error as { code?: unknown })?.code === '0A000' &&
  (error as { routine?: unknown })?.routine === 'RevalidateCachedQuery';

/**
 * Makes the client run every parameterised query as a named prepared statement, named after a
 * hash of its text: PostgreSQL parses and plans it once per connection instead of on every
 * execution (a statement executed prepared costs the server about half the CPU). Queries
 * without parameters (BEGIN, the simple-protocol batches) are left alone, and so is a query
 * with a callback (not Kysely's). Row-level security stays sound: PostgreSQL plans a statement
 * again when the role it was planned for changes, and the policies read app.tenant_id when they
 * run, not when they are planned.
 *
 * A table that changes shape under a prepared statement (a migration run by another process)
 * makes PostgreSQL refuse it ("cached plan must not change result type"): the connection then
 * prepares every statement anew, and the query runs again unless it was inside a transaction,
 * which that error aborted (the caller's transaction fails, once per connection).
 */
export function prepareStatements(client: pg.ClientBase): void {
  const names = new Map<string, string>();
  let generation = 0;
  const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  const prepared = (text: unknown, values: unknown, callback: unknown) => {
    if (typeof text !== 'string' || !Array.isArray(values) || values.length === 0 || callback !== undefined)
      return undefined;
    let name = names.get(text);
    if (name === undefined && names.size < MAX_PREPARED_PER_CONNECTION) {
      name = `m${generation}_${createHash('sha256').update(text).digest('base64url').slice(0, 32)}`;
      names.set(text, name);
    }
    return name === undefined ? undefined : { name, text, values };
  };
  const status = () => (client as { getTransactionStatus?: () => string | null }).getTransactionStatus?.();
  (client as { query: unknown }).query = (text: unknown, values?: unknown, callback?: unknown) => {
    const config = prepared(text, values, callback);
    if (!config) return query(text, values, callback);
    return query(config).catch((error: unknown) => {
      if (!isStalePlan(error)) throw error;
      names.clear();
      generation += 1;
      if (status() !== 'I') throw error;
      return query(prepared(text, values, undefined) ?? { text, values });
    });
  };
}
