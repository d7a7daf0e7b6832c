import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { Type } from 'typebox';
import { withTenant } from '../platform/db/index.ts';
import { actorOf, Nullable, principalOf, requireOperator, SECURED } from '../platform/http/index.ts';
import { DEFAULT_RETENTION, readRetention } from './archive.ts';
import type { ExceptionsDeps } from './deps.ts';
import type { ExceptionsTrx } from './tables.ts';

const base = { tags: ['exceptions'], security: SECURED };

const ArchiveAfterDays = Type.Integer({
  minimum: 1,
  maximum: 3650,
  description: `Days after its last change a resolved or closed exception is archived (Default: ${DEFAULT_RETENTION.archiveAfterDays})`,
});
const DeleteAfterDays = Type.Integer({
  minimum: 1,
  maximum: 36_500,
  description: `Days an archived exception is kept, then deleted (Default: ${DEFAULT_RETENTION.deleteAfterDays})`,
});

const SettingsView = Type.Object(
  {
    archiveAfterDays: ArchiveAfterDays,
    deleteAfterDays: DeleteAfterDays,
    updatedAt: Nullable(Type.String({ format: 'date-time', description: 'null while the defaults apply' })),
  },
  { title: 'ExceptionSettings' },
);
const SettingsBody = Type.Object(
  { archiveAfterDays: Type.Optional(ArchiveAfterDays), deleteAfterDays: Type.Optional(DeleteAfterDays) },
  { additionalProperties: false, minProperties: 1 },
);

/** /exceptions/settings: the tenant's retention (operators and admins). */
export function settingsRoutes(deps: ExceptionsDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/exceptions/settings',
      {
        preValidation: requireOperator('exceptions:read'),
        schema: {
          ...base,
          operationId: 'getExceptionSettings',
          summary: "The tenant's retention of resolved and closed exceptions",
          response: { 200: SettingsView },
        },
      },
      async (request) =>
        withTenant(deps.db, principalOf(request).tenantId, (trx: ExceptionsTrx) => readRetention(trx)),
    );

    app.put(
      '/exceptions/settings',
      {
        preValidation: requireOperator('exceptions:write'),
        schema: {
          ...base,
          operationId: 'updateExceptionSettings',
          summary: 'Change the retention: the fields given; the hourly job applies it from its next run',
          body: SettingsBody,
          response: { 200: SettingsView },
        },
      },
      async (request) => {
        const { tenantId, actor } = actorOf(request);
        const { archiveAfterDays, deleteAfterDays } = request.body;
        const retention = await withTenant(deps.db, tenantId, async (trx: ExceptionsTrx) => {
          await trx
            .insertInto('exceptions.settings')
            .values({
              tenant_id: tenantId,
              archive_after_days: archiveAfterDays ?? DEFAULT_RETENTION.archiveAfterDays,
              delete_after_days: deleteAfterDays ?? DEFAULT_RETENTION.deleteAfterDays,
              updated_at: sql<Date>`now()`,
            })
            .onConflict((oc) =>
              oc.column('tenant_id').doUpdateSet({
                ...(archiveAfterDays === undefined ? {} : { archive_after_days: archiveAfterDays }),
                ...(deleteAfterDays === undefined ? {} : { delete_after_days: deleteAfterDays }),
                updated_at: sql<Date>`now()`,
              }),
            )
            .execute();
          return readRetention(trx);
        });
        // No exception to audit it on: the log keeps who changed how long records are kept.
        deps.ctx.logger.info({ tenantId, actor, ...request.body }, 'exceptions: retention changed');
        return retention;
      },
    );
  };
}
