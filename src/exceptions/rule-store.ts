import { sql } from 'kysely';
import { lockNamed } from '../platform/db/index.ts';
import { AppError } from '../platform/http/index.ts';
import { isUuid, uuidv7 } from '../platform/uuidv7.ts';
import type { Rule } from './classify.ts';
import type { Category, ExceptionsTrx, InterfaceType, Severity } from './tables.ts';

/** Rules a tenant may have. */
export const MAX_RULES = 200;
/** Positions run from 0 to this; a new rule without one goes after the last. */
export const MAX_POSITION = 10_000;

/** A rule as written (POST, and PUT: a whole rule). */
export type RuleInput = {
  name: string;
  position?: number | undefined;
  enabled?: boolean | undefined;
  match?:
    | {
        interfaceType?: InterfaceType | undefined;
        operation?: string | undefined;
        reasonContains?: string | undefined;
        customerId?: string | undefined;
      }
    | undefined;
  set: { category?: Category | undefined; severity?: Severity | undefined; retryable?: boolean | undefined };
};

/** A rule as the API shows it. */
export type RuleView = {
  id: string;
  name: string;
  position: number;
  enabled: boolean;
  match: {
    interfaceType: InterfaceType | null;
    operation: string | null;
    reasonContains: string | null;
    customerId: string | null;
  };
  set: { category: Category | null; severity: Severity | null; retryable: boolean | null };
  createdAt: string;
  updatedAt: string;
};

const time = (value: Date | string) => new Date(value).toISOString();

export function toRuleView(row: Rule): RuleView {
  return {
    id: row.id,
    name: row.name,
    position: row.position,
    enabled: row.enabled,
    match: {
      interfaceType: row.match_interface_type,
      operation: row.match_operation,
      reasonContains: row.match_reason,
      customerId: row.match_customer_id,
    },
    set: { category: row.set_category, severity: row.set_severity, retryable: row.set_retryable },
    createdAt: time(row.created_at),
    updatedAt: time(row.updated_at),
  };
}

const notFound = (id: string) => new AppError('NOT_FOUND', `rule ${id} not found`);

/** The columns a rule input sets (position resolved by the caller). */
function columns(input: RuleInput) {
  return {
    name: input.name,
    enabled: input.enabled ?? true,
    match_interface_type: input.match?.interfaceType ?? null,
    match_operation: input.match?.operation ?? null,
    match_reason: input.match?.reasonContains ?? null,
    match_customer_id: input.match?.customerId ?? null,
    set_category: input.set.category ?? null,
    set_severity: input.set.severity ?? null,
    set_retryable: input.set.retryable ?? null,
  };
}

/** The tenant's rules in the order they are tried (by position, then age). */
export function listRules(trx: ExceptionsTrx): Promise<Rule[]> {
  return trx.selectFrom('exceptions.rules').selectAll().orderBy('position').orderBy('id').execute();
}

/** One rule of the tenant (trx is the tenant's): 404 when absent. */
export async function getRule(trx: ExceptionsTrx, id: string): Promise<Rule> {
  if (!isUuid(id)) throw notFound(id);
  const row = await trx
    .selectFrom('exceptions.rules')
    .selectAll()
    .where('id', '=', id.toLowerCase())
    .executeTakeFirst();
  if (!row) throw notFound(id);
  return row;
}

/**
 * Adds a rule: 409 CONFLICT past MAX_RULES. The tenant's rule additions queue on a lock so two
 * at once cannot both take the last place.
 */
export async function createRule(trx: ExceptionsTrx, tenantId: string, input: RuleInput): Promise<Rule> {
  await lockNamed(trx, `exceptions.rules:${tenantId}`);
  const { rows } = await sql<{ n: number; last: number | null }>`
    select count(*)::int as n, max(position) as last from exceptions.rules`.execute(trx);
  const { n, last } = rows[0] ?? { n: 0, last: null };
  if (n >= MAX_RULES) {
    throw new AppError('CONFLICT', `a tenant has at most ${MAX_RULES} rules: delete or change one instead`);
  }
  const position = input.position ?? Math.min(MAX_POSITION, last === null ? 0 : last + 10);
  return trx
    .insertInto('exceptions.rules')
    .values({ id: uuidv7(), tenant_id: tenantId, position, ...columns(input) })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Replaces a rule with `input` (an omitted condition or setting is cleared; position kept when omitted). */
export async function replaceRule(trx: ExceptionsTrx, id: string, input: RuleInput): Promise<Rule> {
  const current = await getRule(trx, id);
  return trx
    .updateTable('exceptions.rules')
    .set({ ...columns(input), position: input.position ?? current.position, updated_at: new Date() })
    .where('id', '=', current.id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Deletes a rule: 404 when the tenant has none by that id. */
export async function deleteRule(trx: ExceptionsTrx, id: string): Promise<void> {
  if (!isUuid(id)) throw notFound(id);
  const result = await trx
    .deleteFrom('exceptions.rules')
    .where('id', '=', id.toLowerCase())
    .executeTakeFirst();
  if (result.numDeletedRows === 0n) throw notFound(id);
}
