import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { Transaction } from 'kysely';
import { Type } from 'typebox';
import { uuidv7 } from 'uuidv7';
import { withTenant } from '../../platform/db/index.ts';
import {
  cursorId,
  cursorText,
  encodeCursor,
  requireUser,
  SECURED,
  userOf,
} from '../../platform/http/index.ts';
import type { WalDeps } from '../deps.ts';
import type { WalTables } from '../tables.ts';

export type AuditEntry = {
  tenantId: string;
  /** Who: `user:<id>` or `key:<id>` (see actorOf). */
  actor: string;
  /** What, e.g. `namespace.created`, `dead_letter.requeued`. */
  action: string;
  /** What it was done to, e.g. `namespace:orders`. */
  subject: string;
  /** The change itself; never a secret. */
  details: Record<string, unknown>;
};

export type AuditRecord = AuditEntry & { id: string; at: string };

/** The audit actor of a principal: `user:<userId>` or `key:<apiKeyId>`. */
export { actorName as actorOf } from '../../platform/http/index.ts';

/** Appends one entry to wal.audit_log, in the caller's transaction (so it commits with the change). */
export async function recordAudit(trx: Transaction<WalTables>, entry: AuditEntry): Promise<void> {
  await trx
    .insertInto('wal.audit_log')
    .values({
      id: uuidv7(),
      tenant_id: entry.tenantId,
      actor: entry.actor,
      action: entry.action,
      subject: entry.subject,
      details: JSON.stringify(entry.details),
    })
    .execute();
}

/** The tenant's audit entries, newest first, keyset-paginated by id (UUIDv7 is time-ordered). */
export async function listAudit(
  trx: Transaction<WalTables>,
  tenantId: string,
  limit: number,
  before?: string,
): Promise<AuditRecord[]> {
  let query = trx
    .selectFrom('wal.audit_log')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('id', 'desc')
    .limit(limit);
  if (before) query = query.where('id', '<', before);
  const rows = await query.execute();
  return rows.map((row) => ({
    id: row.id,
    tenantId: row.tenant_id,
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    details: (typeof row.details === 'string' ? JSON.parse(row.details) : row.details) as Record<
      string,
      unknown
    >,
    at: new Date(row.at).toISOString(),
  }));
}

const AuditQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Page size (Default: 20)' })),
    cursor: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'The nextCursor of the previous page' }),
    ),
  },
  { additionalProperties: false },
);

const AuditView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  actor: Type.String(),
  action: Type.String(),
  subject: Type.String(),
  details: Type.Object({}, { additionalProperties: true }),
  at: Type.String({ format: 'date-time' }),
});

const AuditPage = Type.Object({
  items: Type.Array(AuditView),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});

/** GET /wal/audit: who changed which namespace or dead letter, and when (tenant admins). */
export function auditRoutes(deps: WalDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/wal/audit',
      {
        preValidation: requireUser('admin'),
        schema: {
          tags: ['wal'],
          security: SECURED as Record<string, string[]>[],
          summary: 'The WAL audit log of the tenant, newest first',
          querystring: AuditQuery,
          response: { 200: AuditPage },
        },
      },
      async (request) => {
        const { tenantId } = userOf(request);
        const limit = request.query.limit ?? 20;
        let before: string | undefined;
        if (request.query.cursor !== undefined) {
          before = cursorId(cursorText(request.query.cursor));
        }
        const rows = await withTenant(deps.db, tenantId, (trx) =>
          listAudit(trx, tenantId, limit + 1, before),
        );
        const items = rows.slice(0, limit);
        const last = items.at(-1);
        const nextCursor = rows.length > limit && last ? encodeCursor(last.id) : null;
        return { items, nextCursor };
      },
    );
  };
}
