import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { eventMetaOf, principalOf, requireStaff } from '../../platform/http/index.ts';
import type { CatalogDeps } from '../deps.ts';
import { SECURITY } from '../products/product-schemas.ts';
import { upsertProductRows } from './batch-upsert.ts';
import type { RowOutcome } from './upsert-row.ts';

/** The most products one batch request carries. */
export const MAX_BATCH = 1_000;

const BatchBody = Type.Object(
  {
    products: Type.Array(Type.Unknown({ description: 'A product as POST /products takes it' }), {
      minItems: 1,
      maxItems: MAX_BATCH,
    }),
  },
  { additionalProperties: false },
);

const RowResult = Type.Object({
  index: Type.Integer(),
  status: Type.Enum(['created', 'updated', 'unchanged', 'failed']),
  id: Type.Optional(Type.String({ format: 'uuid' })),
  handle: Type.Optional(Type.String()),
  code: Type.Optional(
    Type.String({ description: 'For a failed row: the error code, as a single request answers it' }),
  ),
  detail: Type.Optional(Type.String()),
  errors: Type.Optional(
    Type.Array(
      Type.Object({
        in: Type.String(),
        pointer: Type.String({ description: 'Into the row' }),
        message: Type.String(),
      }),
    ),
  ),
});

const BatchResult = Type.Object(
  {
    results: Type.Array(RowResult),
    created: Type.Integer(),
    updated: Type.Integer(),
    unchanged: Type.Integer(),
    failed: Type.Integer(),
  },
  { title: 'ProductBatchResult' },
);

export type BatchCounts = { created: number; updated: number; unchanged: number; failed: number };

export const countOutcomes = (outcomes: RowOutcome[]): BatchCounts => {
  const counts = { created: 0, updated: 0, unchanged: 0, failed: 0 };
  for (const o of outcomes) counts[o.status] += 1;
  return counts;
};

/** POST /products/batch: up to 1,000 products upserted by handle, each answered on its own. */
export function batchRoutes(deps: CatalogDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    app.post(
      '/products/batch',
      {
        preValidation: requireStaff('products:write'),
        bodyLimit: 16 * 1024 * 1024,
        schema: {
          tags: ['catalog'],
          security: SECURITY,
          summary:
            'Create or replace up to 1,000 products by handle; each row is written (or refused) on its own: 207 with one result per row',
          operationId: 'batchProducts',
          body: BatchBody,
          response: { 207: BatchResult },
        },
      },
      async (request, reply) => {
        const { tenantId } = principalOf(request);
        const meta = eventMetaOf(request);
        // In row order, in chunks of rows per transaction: a row naming a handle an earlier row wrote updates it.
        const outcomes = await upsertProductRows(deps, tenantId, request.body.products, {
          meta,
          log: (err) => request.log.error({ err }, 'batch row failed'),
        });
        reply.code(207);
        return { results: outcomes.map((o, index) => ({ index, ...o })), ...countOutcomes(outcomes) };
      },
    );
  };
}
