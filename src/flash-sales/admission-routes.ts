import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { withTenant } from '../platform/db/index.ts';
import { AppError, eventMetaOf, requiredIdempotencyKey, userOf } from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import { admissionView, findAdmission } from './admission-store.ts';
import type { FlashSalesDeps } from './deps.ts';
import type { FlashSalesParts } from './parts.ts';
import { AdmissionBody, AdmissionView, IdParams, PayBody, SECURITY } from './schemas.ts';
import type { FlashSalesTrx } from './tables.ts';

const base = { tags: ['flash-sales'], security: SECURITY };

/** A signed-in customer's attempt on a sale, and the payment of an admitted order. */
export function admissionRoutes(deps: FlashSalesDeps, parts: FlashSalesParts) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/flash-sales/:id/orders',
      {
        // The sale's own limits (per customer, per IP: in process, no round trip) stand in for the
        // platform's shared per-credential limit, which would cost a Redis round trip per attempt.
        config: { rateLimit: false },
        schema: {
          ...base,
          summary:
            'Try to buy in a flash sale: 202 admitted (the order exists; pay by paymentDeadline), or 409 SOLD_OUT, LIMIT_REACHED, NOT_LIVE, 429 with Retry-After. Idempotency-Key is required.',
          params: IdParams,
          body: AdmissionBody,
          response: { 202: AdmissionView },
        },
      },
      async (request, reply) => {
        const user = userOf(request);
        const key = requiredIdempotencyKey(request, 'POST /flash-sales/{id}/orders');
        const { admission } = await parts.admissions.admit({
          tenantId: user.tenantId,
          campaignId: request.params.id.toLowerCase(),
          customerId: user.userId,
          ip: request.ip,
          key,
          body: request.body ?? {},
          meta: eventMetaOf(request),
        });
        return reply
          .code(202)
          .header('location', `/api/v1/orders/${admission.orderId}`)
          .send(admissionView(admission));
      },
    );

    app.post(
      '/orders/:id/pay',
      {
        schema: {
          ...base,
          tags: ['flash-sales'],
          summary:
            'Pay an order admitted in a flash sale before its payment deadline: 202, the checkout saga takes it from here (GET /orders/{id} shows the outcome); 409 PAYMENT_WINDOW_CLOSED after',
          params: IdParams,
          body: PayBody,
          response: { 202: AdmissionView },
        },
      },
      async (request, reply) => {
        const user = userOf(request);
        const id = request.params.id.toLowerCase();
        const notFound = () =>
          new AppError('NOT_FOUND', `order ${request.params.id} has no unpaid flash-sale admission of yours`);
        if (!isUuid(id)) throw notFound();
        const admission = await withTenant(deps.db, user.tenantId, async (anyTrx) => {
          const trx = anyTrx as FlashSalesTrx;
          const found = await findAdmission(trx, id, true);
          if (!found || found.customerId !== user.userId) throw notFound();
          if (found.status === 'released' || found.payBy <= new Date()) {
            throw new AppError(
              'PAYMENT_WINDOW_CLOSED',
              `the payment window of order ${id} closed at ${found.payBy.toISOString()}`,
            );
          }
          if (found.status !== 'admitted') {
            throw new AppError('CONFLICT', `order ${id} is already being paid (${found.status})`);
          }
          const { provider, token } = request.body.payment;
          await trx
            .updateTable('flash_sales.admissions')
            .set({ payment: JSON.stringify({ provider: provider ?? 'test', token }), updated_at: new Date() })
            .where('order_id', '=', id)
            .execute();
          return found;
        });
        parts.queue.kick();
        return reply.code(202).header('location', `/api/v1/orders/${id}`).send(admissionView(admission));
      },
    );
  };
}
