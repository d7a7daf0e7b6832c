import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { type Selectable, sql } from 'kysely';
import { Type } from 'typebox';
import { isoTime, withTenant } from '../platform/db/index.ts';
import {
  AppError,
  cursorId,
  cursorText,
  encodeCursor,
  invalidCursor,
  isStorableTimestamp,
  Nullable,
  principalOf,
  requireOperator,
  SECURED,
} from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import type { ExceptionsDeps } from './deps.ts';
import { ExceptionSchema, toView, VIEW_COLUMN_NAMES, type ViewedRow } from './exception-view.ts';
import { foldGroupCredits } from './group-credits.ts';
import {
  CATEGORIES,
  type Category,
  type ExceptionsTrx,
  type GroupsTable,
  INTERFACE_TYPES,
  type InterfaceType,
  SEVERITIES,
  type Severity,
} from './tables.ts';

const base = { tags: ['exceptions'], security: SECURED };
const read = requireOperator('exceptions:read');

const Uuid = Type.String({ format: 'uuid' });
const Time = Type.String({ format: 'date-time' });
const InterfaceTypeSchema = Type.Enum([...INTERFACE_TYPES]);
const CategorySchema = Type.Enum([...CATEGORIES]);
const SeveritySchema = Type.Enum([...SEVERITIES]);

const GroupView = Type.Object(
  {
    id: Uuid,
    fingerprint: Type.String({ description: 'sha256 of interface type, category and normalized reason' }),
    interfaceType: InterfaceTypeSchema,
    category: CategorySchema,
    severity: Type.Enum([...SEVERITIES], { description: 'The highest severity seen in the group' }),
    normalizedReason: Type.String({
      description: 'The reason with numbers, ids, emails and quoted values replaced',
    }),
    exceptions: Type.Integer({ description: 'Exceptions (transaction ids) in the group' }),
    occurrences: Type.Integer({ description: 'Reports, a repeated transaction id counting again' }),
    firstSeen: Time,
    lastSeen: Time,
  },
  { title: 'ExceptionGroup' },
);
const GroupPage = Type.Object({ items: Type.Array(GroupView), nextCursor: Nullable(Type.String()) });
const GroupDetail = Type.Object({ ...GroupView.properties, latest: Type.Array(ExceptionSchema) });
const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Page size (Default: 20)' })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
    interfaceType: Type.Optional(InterfaceTypeSchema),
    category: Type.Optional(CategorySchema),
    severity: Type.Optional(SeveritySchema),
  },
  { additionalProperties: false },
);
const DetailQuery = Type.Object(
  {
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 100, description: 'Latest exceptions shown (Default: 20)' }),
    ),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Uuid });

type GroupRow = Selectable<GroupsTable> & { cursor_time: string };

function toGroupView(row: GroupRow) {
  return {
    id: row.id,
    fingerprint: row.fingerprint,
    interfaceType: row.interface_type,
    category: row.category,
    severity: row.severity,
    normalizedReason: row.normalized_reason,
    exceptions: row.exceptions,
    occurrences: Number(row.occurrences),
    firstSeen: isoTime(row.first_seen),
    lastSeen: isoTime(row.last_seen),
  };
}

/** A group's place in the list: its last_seen to the microsecond and its id. */
type GroupCursor = { t: string; i: string };

function readCursor(text: string | undefined): GroupCursor | undefined {
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(cursorText(text));
  } catch (error) {
    if (error instanceof SyntaxError) throw invalidCursor('not JSON');
    throw error;
  }
  const { t, i } = (parsed ?? {}) as Partial<GroupCursor>;
  if (typeof t !== 'string' || !isStorableTimestamp(t)) throw invalidCursor('bad time');
  return { t, i: cursorId(i) };
}

const GROUP_COLUMNS = sql`g.*, to_char(g.last_seen at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_time`;

/** A page of the tenant's groups, most recently seen first. */
async function listGroups(
  trx: ExceptionsTrx,
  filters: {
    interfaceType?: InterfaceType | undefined;
    category?: Category | undefined;
    severity?: Severity | undefined;
  },
  limit: number,
  after: GroupCursor | undefined,
) {
  await foldGroupCredits(trx);
  const { rows } = await sql<GroupRow>`
    select ${GROUP_COLUMNS} from exceptions.groups g
    where g.occurrences > 0
      ${filters.interfaceType ? sql`and g.interface_type = ${filters.interfaceType}` : sql``}
      ${filters.category ? sql`and g.category = ${filters.category}` : sql``}
      ${filters.severity ? sql`and g.severity = ${filters.severity}` : sql``}
      ${after ? sql`and (g.last_seen, g.id) < (${after.t}::timestamptz, ${after.i}::uuid)` : sql``}
    order by g.last_seen desc, g.id desc
    limit ${limit + 1}`.execute(trx);
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(toGroupView),
    nextCursor:
      rows.length > limit && last ? encodeCursor(JSON.stringify({ t: last.cursor_time, i: last.id })) : null,
  };
}

/** One group with its latest exceptions: 404 when the tenant has none by that id. */
async function getGroup(trx: ExceptionsTrx, id: string, limit: number) {
  const notFound = new AppError('NOT_FOUND', `exception group ${id} not found`);
  if (!isUuid(id)) throw notFound;
  await foldGroupCredits(trx);
  const { rows } = await sql<GroupRow>`
    select ${GROUP_COLUMNS} from exceptions.groups g where g.id = ${id.toLowerCase()}`.execute(trx);
  const group = rows[0];
  if (!group) throw notFound;
  const latest = await trx
    .selectFrom('exceptions.exceptions')
    .select(VIEW_COLUMN_NAMES)
    .where('group_id', '=', group.id)
    .orderBy('last_seen', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  return { ...toGroupView(group), latest: latest.map((row) => toView(row as ViewedRow)) };
}

/** /exceptions/groups: exceptions grouped by fingerprint, as Sentry groups events into issues. */
export function groupRoutes(deps: ExceptionsDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/exceptions/groups',
      {
        preValidation: read,
        schema: {
          ...base,
          summary:
            'Exception groups (same interface type, category and normalized reason), most recently seen first',
          querystring: ListQuery,
          response: { 200: GroupPage },
        },
      },
      async (request) => {
        const { limit, cursor, ...filters } = request.query;
        const after = readCursor(cursor);
        return withTenant(deps.db, principalOf(request).tenantId, (trx) =>
          listGroups(trx as ExceptionsTrx, filters, limit ?? 20, after),
        );
      },
    );

    app.get(
      '/exceptions/groups/:id',
      {
        preValidation: read,
        schema: {
          ...base,
          summary: 'One exception group and its latest exceptions',
          params: IdParams,
          querystring: DetailQuery,
          response: { 200: GroupDetail },
        },
      },
      async (request) =>
        withTenant(deps.db, principalOf(request).tenantId, (trx) =>
          getGroup(trx as ExceptionsTrx, request.params.id, request.query.limit ?? 20),
        ),
    );
  };
}
