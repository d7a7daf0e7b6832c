import { CompiledQuery, type Kysely } from 'kysely';
import { withTenant } from '../../platform/db/index.ts';
import { PLATFORM_TENANT_ID } from '../../platform/http/index.ts';
import { SQL_NEEDS_POSTGRES, type SqlTarget } from '../namespaces/namespace.ts';
import { pointerDocument, resolvePointer } from './json-pointer.ts';
import type { Delivery, TargetResult } from './target-result.ts';

// SQLSTATE classes a retry cannot fix: syntax/permission (42), data (22), constraint (23).
const NON_RETRYABLE_CLASSES = new Set(['42', '22', '23']);

/** A param value as the driver takes it: primitives as they are, objects and arrays as JSON text. */
function toParam(value: unknown): unknown {
  if (value === undefined) return null;
  if (value === null || typeof value !== 'object') return value;
  return JSON.stringify(value);
}

/** The SQLSTATE of a driver error (pg and PGlite both expose `code`), if any. */
function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Runs a SQL target's statement ($1, $2, … filled from its JSON-pointer params) in a
 * transaction scoped to the delivery's tenant, so row-level security holds. Only the operator
 * defines SQL: a target of any tenant but the platform tenant (one stored before tenant admins
 * were refused them) is not run and goes to the dead letters. Nor is any on embedded PGlite, whose
 * one session is the superuser's (a statement could take its role): one stored before sql targets
 * were refused there goes to the dead letters too.
 */
export async function deliverSql(
  database: { kind: 'postgres' | 'pglite'; kysely: Kysely<unknown> },
  target: SqlTarget,
  delivery: Delivery,
): Promise<TargetResult> {
  if (database.kind !== 'postgres') return { outcome: 'dead', error: SQL_NEEDS_POSTGRES };
  if (delivery.tenantId !== PLATFORM_TENANT_ID) {
    return { outcome: 'dead', error: 'sql targets are for the operator (the platform tenant) only' };
  }
  let params: unknown[];
  try {
    const document = pointerDocument(delivery);
    params = target.params.map((pointer) => toParam(resolvePointer(document, pointer)));
  } catch (error) {
    return { outcome: 'dead', error: (error as Error).message };
  }
  try {
    await withTenant(database.kysely, delivery.tenantId, (trx) =>
      trx.executeQuery(CompiledQuery.raw(target.statement, params)),
    );
    return { outcome: 'delivered' };
  } catch (error) {
    const state = sqlState(error);
    const message = `${state ? `SQLSTATE ${state}: ` : ''}${(error as Error).message}`;
    if (state && NON_RETRYABLE_CLASSES.has(state.slice(0, 2))) return { outcome: 'dead', error: message };
    return { outcome: 'retry', error: message };
  }
}
