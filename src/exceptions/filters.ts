import { type RawBuilder, sql } from 'kysely';
import { type Static, Type } from 'typebox';
import { AppError } from '../platform/http/index.ts';
import {
  CATEGORIES,
  type Category,
  type ExceptionStatus,
  INTERFACE_TYPES,
  type InterfaceType,
  SEVERITIES,
  type Severity,
  STATUSES,
} from './tables.ts';

/**
 * One value of `values`, or a comma list of them (`NEW,ACKNOWLEDGED`): the pattern is ours, built
 * from our own enums, never from input.
 */
const listOf = (values: readonly string[]) => {
  const one = `(?:${values.join('|')})`;
  return Type.String({ pattern: `^${one}(?:,${one})*$`, maxLength: 200 });
};

/** A parameter that may repeat (?status=NEW&status=ACKNOWLEDGED) or hold a comma list. */
const anyOf = (values: readonly string[], description: string) =>
  Type.Optional(
    Type.Union([listOf(values), Type.Array(listOf(values), { minItems: 1, maxItems: values.length })], {
      description: `${description}: ${values.join(', ')}; repeat or comma-separate for any of several`,
    }),
  );

const Id = (description: string) => Type.Optional(Type.String({ minLength: 1, maxLength: 200, description }));
const Time = (description: string) => Type.Optional(Type.String({ format: 'date-time', description }));

/**
 * The one filter of the collector's reads and bulk changes: the list, the search and the summary
 * take it as query parameters, POST /exceptions/bulk as its `filter` object.
 */
export const FilterProperties = {
  status: anyOf(STATUSES, 'Status'),
  severity: anyOf(SEVERITIES, 'Severity'),
  category: anyOf(CATEGORIES, 'Category'),
  interfaceType: anyOf(INTERFACE_TYPES, 'Interface type'),
  customerId: Id('The customer it concerns (exact)'),
  locationCode: Id('The location it concerns (exact)'),
  groupId: Type.Optional(Type.String({ format: 'uuid', description: 'Exceptions of this group (issue)' })),
  retryable: Type.Optional(
    Type.Boolean({ description: 'Only retryable (true) or non-retryable (false) ones' }),
  ),
  from: Time('Last seen at or after this time'),
  to: Time('Last seen before this time'),
};

export const FilterBody = Type.Object(FilterProperties, { additionalProperties: false });
export type FilterInput = Static<typeof FilterBody>;

/** A filter as the queries take it: lists deduplicated, times checked. */
export type ExceptionFilter = {
  statuses?: ExceptionStatus[] | undefined;
  severities?: Severity[] | undefined;
  categories?: Category[] | undefined;
  interfaceTypes?: InterfaceType[] | undefined;
  customerId?: string | undefined;
  locationCode?: string | undefined;
  groupId?: string | undefined;
  retryable?: boolean | undefined;
  from?: string | undefined;
  to?: string | undefined;
};

const split = <T extends string>(value: string | string[] | undefined): T[] | undefined =>
  value === undefined ? undefined : ([...new Set([value].flat().flatMap((v) => v.split(',')))] as T[]);

/**
 * The filter of validated input; 400 when `from` is not before `to`. `where` names the part of
 * the request the filter came from, for the error's pointer (`query`, or `body` with a prefix).
 */
export function readFilter(
  input: FilterInput,
  where: { in: 'query' | 'body'; prefix: string } = { in: 'query', prefix: '' },
): ExceptionFilter {
  if (input.from !== undefined && input.to !== undefined && Date.parse(input.from) >= Date.parse(input.to)) {
    throw new AppError('VALIDATION_FAILED', '`from` must be before `to`', {
      errors: [{ in: where.in, pointer: `${where.prefix}/to`, message: 'must be after from' }],
    });
  }
  return {
    statuses: split<ExceptionStatus>(input.status),
    severities: split<Severity>(input.severity),
    categories: split<Category>(input.category),
    interfaceTypes: split<InterfaceType>(input.interfaceType),
    customerId: input.customerId,
    locationCode: input.locationCode,
    groupId: input.groupId?.toLowerCase(),
    retryable: input.retryable,
    from: input.from,
    to: input.to,
  };
}

/** Whether the filter narrows anything (a bulk change needs one, or an explicit `all`). */
export const isEmptyFilter = (f: ExceptionFilter): boolean => Object.values(f).every((v) => v === undefined);

/**
 * `column = value`, or `= any(values)` for several: one value stays an equality, so the planner
 * walks the (tenant_id, column, last_seen) index in order instead of sorting.
 */
function oneOf(column: string, values: readonly string[]): RawBuilder<unknown> {
  return values.length === 1
    ? sql`${sql.ref(column)} = ${values[0]}`
    : sql`${sql.ref(column)} = any(${values}::text[])`;
}

/**
 * The filter as SQL over exceptions.exceptions (unqualified columns), the tenant first: every
 * index of the table leads with tenant_id. Values are parameters, never SQL.
 */
export function filterClauses(tenantId: string, f: ExceptionFilter): RawBuilder<unknown>[] {
  const where = [sql`tenant_id = ${tenantId}`];
  if (f.statuses) where.push(oneOf('status', f.statuses));
  if (f.severities) where.push(oneOf('severity', f.severities));
  if (f.categories) where.push(oneOf('category', f.categories));
  if (f.interfaceTypes) where.push(oneOf('interface_type', f.interfaceTypes));
  if (f.customerId !== undefined) where.push(sql`customer_id = ${f.customerId}`);
  if (f.locationCode !== undefined) where.push(sql`location_code = ${f.locationCode}`);
  if (f.groupId !== undefined) where.push(sql`group_id = ${f.groupId}::uuid`);
  if (f.retryable !== undefined) where.push(sql`retryable = ${f.retryable}`);
  if (f.from !== undefined) where.push(sql`last_seen >= ${f.from}::timestamptz`);
  if (f.to !== undefined) where.push(sql`last_seen < ${f.to}::timestamptz`);
  return where;
}

/** Clauses joined with `and`. */
export const and = (clauses: RawBuilder<unknown>[]): RawBuilder<unknown> => sql.join(clauses, sql` and `);

/** filterClauses joined: the whole where clause of a filter. */
export const filterSql = (tenantId: string, f: ExceptionFilter): RawBuilder<unknown> =>
  and(filterClauses(tenantId, f));
