import type { Compilable, Kysely } from 'kysely';
import type pg from 'pg';
import { isUuid } from '../uuidv7.ts';
import { requestPoolOf, withTenant } from './tenant-context.ts';

type Scalar = string | number | boolean | null | undefined | Date;

function literal(client: pg.PoolClient, value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value instanceof Date) return `${client.escapeLiteral(value.toISOString())}::timestamptz`;
  if (typeof value === 'string') return client.escapeLiteral(value);
  throw new TypeError(
    `readAsTenant inlines only strings, numbers, booleans, dates and null, got ${typeof value}`,
  );
}

/**
 * Replaces $1…$n with escaped literals in one pass over the compiled SQL, with a replacer function:
 * an inlined value is never scanned again, and `$` in a value is never read as a pattern.
 */
function inline(client: pg.PoolClient, text: string, parameters: readonly unknown[]): string {
  return text.replace(/\$(\d+)/g, (_, index: string) => {
    const i = Number(index) - 1;
    if (i < 0 || i >= parameters.length) throw new TypeError(`no parameter for $${index}`);
    return literal(client, parameters[i] as Scalar);
  });
}

/**
 * One read-only statement as one tenant, in ONE round trip on PostgreSQL: the statements of a
 * simple-protocol query run as one implicit transaction, so
 * `select set_config('app.tenant_id', …, true); <query>` scopes the query exactly as withTenant
 * does, on the request pool whose role cannot bypass row-level security, and the setting ends
 * with it. Parameters are sent as escaped literals, so only scalar values are allowed. On PGlite
 * (one in-process connection, where a round trip costs nothing) it is withTenant.
 */
export async function readAsTenant<DB, O>(
  db: Kysely<DB>,
  tenantId: string,
  build: (db: Kysely<DB>) => Compilable<O>,
): Promise<O[]> {
  const pool = requestPoolOf(db);
  if (!pool)
    return withTenant(db, tenantId, async (trx) => (await trx.executeQuery(build(trx).compile())).rows);
  if (!isUuid(tenantId)) throw new TypeError('tenantId must be a UUID');
  const compiled = build(db).compile();
  const client = await pool.connect();
  try {
    const text = `select set_config('app.tenant_id', '${tenantId}', true); ${inline(client, compiled.sql, compiled.parameters)}`;
    const results = (await client.query(text)) as unknown as pg.QueryResult[];
    return results[1]!.rows as O[];
  } finally {
    client.release();
  }
}
