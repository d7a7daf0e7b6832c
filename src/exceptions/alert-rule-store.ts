import { type Selectable, sql } from 'kysely';
import { isoTime, lockNamed } from '../platform/db/index.ts';
import {
  AppError,
  cursorId,
  cursorText,
  encodeCursor,
  type FieldError,
  validationFailed,
} from '../platform/http/index.ts';
import { isUuid, uuidv7 } from '../platform/uuidv7.ts';
import type { ViewedRow } from './exception-view.ts';
import {
  type AlertKind,
  type AlertRulesTable,
  type Category,
  type ExceptionsTrx,
  type InterfaceType,
  type Severity,
  severityRank,
} from './tables.ts';

/** A tenant may keep this many alert rules: each one is evaluated on every captured batch. */
export const MAX_ALERT_RULES = 100;

export type AlertRuleRow = Selectable<AlertRulesTable>;

/** An alert rule as the API shows it. */
export type AlertRule = {
  id: string;
  name: string;
  enabled: boolean;
  kind: AlertKind;
  minSeverity: Severity | null;
  failedRetries: number | null;
  threshold: number | null;
  windowMinutes: number | null;
  interfaceType: InterfaceType | null;
  category: Category | null;
  createdAt: string;
  updatedAt: string;
};

/** What a tenant admin sets on a rule (POST: all of it; PUT: any of it). */
export type AlertRuleInput = {
  name?: string | undefined;
  enabled?: boolean | undefined;
  kind?: AlertKind | undefined;
  minSeverity?: Severity | null | undefined;
  failedRetries?: number | null | undefined;
  threshold?: number | null | undefined;
  windowMinutes?: number | null | undefined;
  interfaceType?: InterfaceType | null | undefined;
  category?: Category | null | undefined;
};

export function toRule(row: AlertRuleRow): AlertRule {
  return {
    id: row.id,
    name: row.name,
    enabled: row.enabled,
    kind: row.kind,
    minSeverity: row.min_severity,
    failedRetries: row.failed_retries,
    threshold: row.threshold,
    windowMinutes: row.window_minutes,
    interfaceType: row.match_interface_type,
    category: row.match_category,
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
}

// Fields that belong to one kind only; minSeverity narrows any kind (and is the severity kind's test).
const KIND_FIELDS = { failedRetries: 'retries', threshold: 'rate', windowMinutes: 'rate' } as const;
const REQUIRED: Record<AlertKind, Array<keyof AlertRuleInput>> = {
  severity: ['minSeverity'],
  retries: ['failedRetries'],
  rate: ['threshold', 'windowMinutes'],
};

/**
 * The rule a write leaves: `input` over `stored` (none on POST). A field of another kind given in
 * the body is a 400; one left over from the stored rule's former kind is cleared.
 */
export function mergeRule(stored: AlertRule | undefined, input: AlertRuleInput): Required<AlertRuleInput> {
  const kind = (input.kind ?? stored?.kind) as AlertKind;
  const pick = <K extends keyof AlertRuleInput>(key: K) =>
    (input[key] !== undefined ? input[key] : (stored?.[key as keyof AlertRule] ?? null)) as AlertRuleInput[K];
  const errors: FieldError[] = [];
  const merged = {
    name: pick('name'),
    enabled: pick('enabled') ?? true,
    kind,
    minSeverity: pick('minSeverity'),
    failedRetries: pick('failedRetries'),
    threshold: pick('threshold'),
    windowMinutes: pick('windowMinutes'),
    interfaceType: pick('interfaceType'),
    category: pick('category'),
  } as Required<AlertRuleInput>;
  for (const [field, owner] of Object.entries(KIND_FIELDS) as Array<[keyof typeof KIND_FIELDS, AlertKind]>) {
    if (owner === kind) continue;
    if (input[field] !== undefined && input[field] !== null) {
      errors.push({
        in: 'body',
        pointer: `/${field}`,
        message: `applies to ${owner} rules, not ${kind} rules`,
      });
    }
    merged[field] = null;
  }
  for (const field of REQUIRED[kind]) {
    if (merged[field] === null || merged[field] === undefined) {
      errors.push({ in: 'body', pointer: `/${field}`, message: `is required for ${kind} rules` });
    }
  }
  if (errors.length > 0) {
    throw validationFailed(errors);
  }
  return merged;
}

const columns = (rule: Required<AlertRuleInput>) => ({
  name: rule.name as string,
  enabled: rule.enabled as boolean,
  kind: rule.kind as AlertKind,
  min_severity: rule.minSeverity,
  failed_retries: rule.failedRetries,
  threshold: rule.threshold,
  window_minutes: rule.windowMinutes,
  match_interface_type: rule.interfaceType,
  match_category: rule.category,
});

/** Adds a rule; 409 CONFLICT past MAX_ALERT_RULES (counted under a per-tenant lock, so two adds cannot both pass). */
export async function insertRule(
  trx: ExceptionsTrx,
  tenantId: string,
  input: AlertRuleInput,
): Promise<AlertRule> {
  const rule = mergeRule(undefined, input);
  await lockNamed(trx, `exceptions.alert_rules:${tenantId}`);
  const { count } = await trx
    .selectFrom('exceptions.alert_rules')
    .select((eb) => eb.fn.countAll<number | string>().as('count'))
    .executeTakeFirstOrThrow();
  if (Number(count) >= MAX_ALERT_RULES) {
    throw new AppError('CONFLICT', `a tenant has at most ${MAX_ALERT_RULES} alert rules; delete one first`);
  }
  const row = await trx
    .insertInto('exceptions.alert_rules')
    .values({ id: uuidv7(), tenant_id: tenantId, ...columns(rule) })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toRule(row);
}

const ruleNotFound = (id: string) => new AppError('NOT_FOUND', `alert rule ${id} not found`);

/** One rule of the tenant; 404 when absent (or another tenant's: RLS hides it). */
export async function getRule(trx: ExceptionsTrx, id: string, lock = false): Promise<AlertRule> {
  if (!isUuid(id)) throw ruleNotFound(id);
  let query = trx.selectFrom('exceptions.alert_rules').selectAll().where('id', '=', id.toLowerCase());
  if (lock) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  if (!row) throw ruleNotFound(id);
  return toRule(row);
}

/** Changes the fields given; the result must still be a whole rule of its kind. */
export async function updateRule(trx: ExceptionsTrx, id: string, input: AlertRuleInput): Promise<AlertRule> {
  const rule = mergeRule(await getRule(trx, id, true), input);
  const row = await trx
    .updateTable('exceptions.alert_rules')
    .set({ ...columns(rule), updated_at: sql<Date>`now()` })
    .where('id', '=', id.toLowerCase())
    .returningAll()
    .executeTakeFirstOrThrow();
  return toRule(row);
}

/** Deletes a rule and, by cascade, the alerts it fired. */
export async function deleteRule(trx: ExceptionsTrx, id: string): Promise<void> {
  if (!isUuid(id)) throw ruleNotFound(id);
  const result = await trx
    .deleteFrom('exceptions.alert_rules')
    .where('id', '=', id.toLowerCase())
    .executeTakeFirst();
  if (Number(result.numDeletedRows) === 0) throw ruleNotFound(id);
}

/** The tenant's rules in the order they were made, a page at a time. */
export async function listRules(
  trx: ExceptionsTrx,
  options: { limit: number; cursor: string | undefined; kind: AlertKind | undefined },
): Promise<{ items: AlertRule[]; nextCursor: string | null }> {
  let query = trx
    .selectFrom('exceptions.alert_rules')
    .selectAll()
    .orderBy('id')
    .limit(options.limit + 1);
  if (options.cursor !== undefined) query = query.where('id', '>', cursorId(cursorText(options.cursor)));
  if (options.kind) query = query.where('kind', '=', options.kind);
  const rows = await query.execute();
  const items = rows.slice(0, options.limit).map(toRule);
  return { items, nextCursor: rows.length > options.limit ? encodeCursor(items.at(-1)!.id) : null };
}

/** The tenant's enabled rules of these kinds (the firing path: one query per captured batch). */
export async function enabledRules(trx: ExceptionsTrx, kinds: AlertKind[]): Promise<AlertRuleRow[]> {
  return trx
    .selectFrom('exceptions.alert_rules')
    .selectAll()
    .where('enabled', '=', true)
    .where('kind', 'in', kinds)
    .orderBy('id')
    .execute();
}

/** Whether the exception passes the rule's filters (interface type, category, minimum severity). */
export const matchesFilters = (rule: AlertRuleRow, row: ViewedRow) =>
  (rule.match_interface_type === null || rule.match_interface_type === row.interface_type) &&
  (rule.match_category === null || rule.match_category === row.category) &&
  (rule.min_severity === null || severityRank(row.severity) >= severityRank(rule.min_severity as Severity));
