import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { withTenant } from '../platform/db/index.ts';
import { AppError, eventMetaOf, principalOf, requireStaff } from '../platform/http/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { initiatePayment, processPayment } from './authorize.ts';
import { listOperations } from './call-store.ts';
import { capturePayment } from './capture.ts';
import type { PaymentsDeps } from './deps.ts';
import { fitOrder, refuseClosedOrder } from './order-fit.ts';
import { refuseOrderPaymentKey } from './order-payment-key.ts';
import { type PaymentStatus, paymentMachine } from './payment-machine.ts';
import {
  FailBody,
  IdParams,
  InitiateBody,
  OperationList,
  OrderParams,
  PaymentList,
  PaymentView,
  RefundBody,
  SECURITY,
} from './payment-schemas.ts';
import { getPayment, listByOrder } from './payment-store.ts';
import { refundPayment } from './refund.ts';
import { toPayment } from './views.ts';
import { failPayment, voidPayment } from './void-payment.ts';

const base = { tags: ['payments'], security: SECURITY };
const write = requireStaff('payments:write');
const read = requireStaff('payments:read');
const AUTHORIZED: readonly string[] = ['authorized', 'completed', 'partially_refunded', 'refunded'];

/** The Idempotency-Key header, when given: 400 unless it is 1 to 200 visible ASCII characters. */
function headerKey(request: FastifyRequest): string | undefined {
  const header = request.headers['idempotency-key'];
  if (header === undefined) return undefined;
  if (typeof header === 'string' && /^[\x21-\x7e]{1,200}$/.test(header)) return header;
  throw new AppError('VALIDATION_FAILED', 'Idempotency-Key must be 1 to 200 visible ASCII characters', {
    errors: [
      { in: 'headers', pointer: '/idempotency-key', message: 'must be 1 to 200 visible ASCII characters' },
    ],
  });
}

/** Staff routes of payments (the seed's PaymentController): initiate, read, process, complete, fail, refund. */
export function paymentRoutes(deps: PaymentsDeps) {
  /** Runs a provider step within MERCATO_CHECKOUT_STEP_TIMEOUT_MS; past it, onTimeout, then 504. */
  const inTime = async <T>(
    run: (signal: AbortSignal) => Promise<T>,
    onTimeout?: () => Promise<unknown>,
    extras: Record<string, unknown> = {},
  ) => {
    const signal = AbortSignal.timeout(deps.ctx.config.checkoutStepTimeoutMs);
    try {
      return await run(signal);
    } catch (error) {
      if (!signal.aborted || error !== signal.reason) throw error;
      await onTimeout?.().catch((err: unknown) =>
        deps.logger.warn({ err }, 'payments: clean-up after a timeout failed'),
      );
      throw new AppError('CHECKOUT_TIMEOUT', 'the payment provider did not answer in time', extras, {
        cause: error,
      });
    }
  };
  /** The tenant of the caller and the payment it names (404 when it is not the tenant's). */
  const paymentOf = async (request: FastifyRequest, id: string) => {
    const { tenantId } = principalOf(request);
    const row = await withTenant(deps.db, tenantId, (trx) => getPayment(trx, id));
    return { tenantId, row, meta: eventMetaOf(request) };
  };

  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/payments',
      {
        preValidation: write,
        schema: {
          ...base,
          summary: 'Initiate a payment of an order (pending until processed)',
          body: InitiateBody,
          response: { 201: PaymentView },
        },
      },
      async (request, reply) => {
        const { tenantId } = principalOf(request);
        const body = request.body;
        const provider = body.provider ?? 'test';
        deps.providers.get(provider);
        // The checkout's key of an order is its own (order-payment-key.ts).
        refuseOrderPaymentKey(body.key);
        const key = body.key ?? uuidv7();
        const { amount, guard } = await fitOrder(deps, tenantId, { ...body, key });
        const row = await initiatePayment(
          deps,
          {
            tenantId,
            key,
            orderId: body.orderId,
            amount,
            currency: body.currency,
            provider,
            token: body.token,
          },
          eventMetaOf(request),
          guard,
        );
        reply.code(201).header('location', `/api/v1/payments/${row.id}`);
        return toPayment(row);
      },
    );

    app.get(
      '/payments/:id',
      {
        preValidation: read,
        schema: { ...base, summary: 'One payment', params: IdParams, response: { 200: PaymentView } },
      },
      async (request) => toPayment((await paymentOf(request, request.params.id)).row),
    );

    app.get(
      '/payments/:id/operations',
      {
        preValidation: read,
        schema: {
          ...base,
          summary: "The payment's calls to its provider and the webhooks it sent, oldest first",
          params: IdParams,
          response: { 200: OperationList },
        },
      },
      async (request) => {
        const { tenantId } = principalOf(request);
        return withTenant(deps.db, tenantId, async (trx) => {
          await getPayment(trx, request.params.id);
          return { items: await listOperations(trx, request.params.id) };
        });
      },
    );

    app.get(
      '/payments/order/:orderId',
      {
        preValidation: read,
        schema: {
          ...base,
          summary: "An order's payments, oldest first",
          params: OrderParams,
          response: { 200: PaymentList },
        },
      },
      async (request) => {
        const { tenantId } = principalOf(request);
        const { orderId } = request.params;
        const rows = await withTenant(deps.db, tenantId, (trx) => listByOrder(trx, orderId));
        if (rows.length === 0 && deps.findOrder && !(await deps.findOrder(tenantId, orderId))) {
          throw new AppError('NOT_FOUND', `order ${orderId} not found`);
        }
        return { items: rows.map(toPayment) };
      },
    );

    app.post(
      '/payments/:id/process',
      {
        preValidation: write,
        schema: {
          ...base,
          summary:
            'Authorize the payment with its provider: 200 authorized, 202 pending (a webhook settles it), 402 declined, 422 its order was cancelled or failed, 502 provider error, 504 no answer in time (then voided)',
          params: IdParams,
          response: { 200: PaymentView, 202: PaymentView },
        },
      },
      async (request, reply) => {
        const { tenantId, row, meta } = await paymentOf(request, request.params.id);
        if (AUTHORIZED.includes(row.status)) return toPayment(row);
        // A processing payment (an authorization pending at the provider, or a call whose answer
        // was lost) is asked again under the same idempotency key, which never authorizes twice.
        if (row.status !== 'processing') paymentMachine.assert(row.status as PaymentStatus, 'processing');
        await refuseClosedOrder(deps, tenantId, row, 'authorize');
        const outcome = await inTime(
          (signal) => processPayment(deps, tenantId, row.key, signal, meta),
          () =>
            voidPayment(
              deps,
              tenantId,
              row.key,
              'the provider did not answer in time',
              AbortSignal.timeout(deps.ctx.config.checkoutStepTimeoutMs),
              meta,
              'timeout',
            ),
        );
        const { payment } = outcome;
        if (outcome.outcome === 'declined') {
          throw new AppError('PAYMENT_DECLINED', outcome.message, {
            paymentId: payment.id,
            declineCode: outcome.code,
          });
        }
        if (outcome.outcome === 'error') {
          throw new AppError('PAYMENT_PROVIDER_ERROR', outcome.message, { paymentId: payment.id });
        }
        if (outcome.outcome === 'pending') reply.code(202);
        return payment;
      },
    );

    app.post(
      '/payments/:id/complete',
      {
        preValidation: write,
        schema: {
          ...base,
          summary:
            'Capture the authorized payment in full (a completed one is answered as it is; 422 when its order was cancelled or failed)',
          params: IdParams,
          response: { 200: PaymentView },
        },
      },
      async (request) => {
        const { tenantId, row, meta } = await paymentOf(request, request.params.id);
        if (row.status === 'authorized') await refuseClosedOrder(deps, tenantId, row, 'capture');
        return inTime((signal) => capturePayment(deps, tenantId, row.key, signal, meta));
      },
    );

    app.post(
      '/payments/:id/fail',
      {
        preValidation: write,
        schema: {
          ...base,
          summary: 'Fail the payment: an authorization (or one in flight) is voided at the provider',
          params: IdParams,
          body: FailBody,
          response: { 200: PaymentView },
        },
      },
      async (request) => {
        const { tenantId, row, meta } = await paymentOf(request, request.params.id);
        return inTime((signal) => failPayment(deps, tenantId, row.key, request.body.reason, signal, meta));
      },
    );

    app.post(
      '/payments/:id/refund',
      {
        // Answers 200, yet a repeat acts again: the platform keeps the Idempotency-Key's answer, so
        // the same key with another body or for another payment is 409 IDEMPOTENCY_KEY_REUSED.
        config: { idempotency: true },
        preValidation: write,
        schema: {
          ...base,
          summary: 'Refund all or part of a captured payment',
          params: IdParams,
          body: RefundBody,
          response: { 200: PaymentView },
        },
      },
      async (request) => {
        const { tenantId, row, meta } = await paymentOf(request, request.params.id);
        const refundKey = request.body.refundKey ?? headerKey(request) ?? uuidv7();
        const input = { amount: request.body.amount, reason: request.body.reason, refundKey };
        // A refund cut short stays pending, holding its amount, until asked again with its refundKey.
        return inTime((signal) => refundPayment(deps, tenantId, row.key, input, signal, meta), undefined, {
          paymentId: row.id,
          refundKey,
        });
      },
    );
  };
}
