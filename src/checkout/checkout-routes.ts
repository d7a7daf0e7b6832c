import { setTimeout as sleep } from 'node:timers/promises';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { type Order, OrderView } from '../orders/index.ts';
import { withTenant } from '../platform/db/index.ts';
import {
  AppError,
  type ErrorCode,
  eventMetaOf,
  isStaff,
  noBodyIsEmpty,
  principalOf,
  requiredIdempotencyKey,
  requireStaff,
} from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import { cancelOrder } from './cancel-order.ts';
import {
  CancelBody,
  IdParams,
  PlaceOrderBody,
  SagaView,
  STAFF_SECURITY,
  STOREFRONT_SECURITY,
  StatusBody,
} from './checkout-schemas.ts';
import type { CheckoutDeps } from './deps.ts';
import { placeOrder } from './place-order.ts';
import type { RunResult, SagaRunner } from './saga-runner.ts';
import { findSaga, listSteps } from './saga-store.ts';
import { FAILURES } from './step-outcome.ts';
import type { CheckoutTrx } from './tables.ts';

const WRITE = 'orders:write';
const base = { tags: ['orders'] };

/** POST /orders (the checkout), cancel, staff status changes, and the saga's log. */
export function checkoutRoutes(
  deps: CheckoutDeps,
  runner: SagaRunner,
  tenantOf: (r: never) => Promise<string>,
) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const inlineMs = deps.ctx.config.checkoutInlineMs;
    const readOrder = (tenantId: string, orderId: string) =>
      withTenant(deps.db, tenantId, (trx) => deps.orders.get(trx, tenantId, orderId));

    /** The order once its run finished, or as it stands after MERCATO_CHECKOUT_INLINE_MS. */
    const settle = async (tenantId: string, orderId: string, run: Promise<RunResult> | undefined) => {
      const result = run ? await Promise.race([run, sleep(inlineMs)]) : undefined;
      // The run that completed the order has it as it wrote it: no read back.
      if (result && result.state === 'stopped' && result.order?.id === orderId) return result.order;
      return (await readOrder(tenantId, orderId))!;
    };

    const answer = (reply: FastifyReply, order: Order, created: number) => {
      if (order.status === 'failed' && order.failure) {
        const code: ErrorCode = FAILURES[order.failure.reason as keyof typeof FAILURES] ?? 'CHECKOUT_INVALID';
        throw new AppError(code, order.failure.message, {
          orderId: order.id,
          orderNumber: order.number,
          reason: order.failure.reason,
        });
      }
      // Cancelled while it was checked out (a cancel overtook the run), or since: no order to
      // fulfil, answered as a failure is (a replay of the key answers it so too).
      if (order.status === 'cancelled') {
        throw new AppError(
          'ORDER_CANCELLED',
          `order ${order.name} was cancelled: ${order.cancelReason ?? 'cancelled'}`,
          {
            orderId: order.id,
            orderNumber: order.number,
            reason: 'cancelled',
          },
        );
      }
      if (order.status === 'completed') return reply.code(created).send(order);
      return reply.code(202).header('location', `/api/v1/orders/${order.id}`).send(order);
    };

    app.post(
      '/orders',
      {
        // The order is its Idempotency-Key's record (with a hash of the body): a repeat answers
        // the order as it is now. The platform's stored answer would cost two more statements.
        config: { idempotency: false },
        schema: {
          ...base,
          security: STOREFRONT_SECURITY,
          summary:
            'Check out a cart: reserve stock, authorize and capture the payment, confirm (201 with the completed order; 202 with a Location while it finishes; a failure answers its problem with orderId, and an order cancelled meanwhile 409 ORDER_CANCELLED with orderId and reason "cancelled"). Idempotency-Key is required: the same key and body again answer the order as it is now (200 once completed).',
          body: PlaceOrderBody,
          response: { 200: OrderView, 201: OrderView, 202: OrderView },
        },
      },
      async (request, reply) => {
        const tenantId = await tenantOf(request as never);
        const key = requiredIdempotencyKey(request, 'POST /orders');
        const placed = await placeOrder(
          deps,
          tenantId,
          request,
          request.body,
          key,
          eventMetaOf(request),
          runner,
        );
        let run: Promise<RunResult> | undefined;
        if (placed.sagaId) {
          run = placed.replayed ? undefined : runner.run(tenantId, placed.sagaId, placed.held);
          if (placed.replayed) runner.kick(tenantId, placed.sagaId);
        }
        const order = placed.replayed ? placed.order : await settle(tenantId, placed.order.id, run);
        return answer(reply, order, placed.replayed ? 200 : 201);
      },
    );

    app.put(
      '/orders/:id/cancel',
      {
        // A cancel without a reason may come without a body.
        preValidation: noBodyIsEmpty,
        schema: {
          ...base,
          security: STAFF_SECURITY,
          summary:
            'Cancel an order (its customer, or staff): the saga compensates (refund or void, stock back); 200 with the cancelled order, 202 while it finishes',
          params: IdParams,
          body: CancelBody,
          response: { 200: OrderView, 202: OrderView },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const tenantId = principal.tenantId;
        const staff = isStaff(principal, WRITE);
        if (!staff && principal.kind !== 'user')
          throw new AppError('FORBIDDEN', 'API keys need orders:write');
        const id = request.params.id.toLowerCase();
        if (!isUuid(id)) throw new AppError('NOT_FOUND', `order ${request.params.id} not found`);
        const actor = principal.kind === 'user' ? `user:${principal.userId}` : `key:${principal.apiKeyId}`;
        const { sagaId } = await cancelOrder(deps, tenantId, id, {
          actor,
          reason: request.body?.reason ?? (staff ? 'cancelled by staff' : 'cancelled by the customer'),
          mayCancel: (order) => staff || (principal.kind === 'user' && order.customerId === principal.userId),
        });
        const order = await settle(tenantId, id, sagaId ? runner.run(tenantId, sagaId) : undefined);
        if (sagaId && order.status !== 'cancelled') runner.kick(tenantId, sagaId, 100);
        return reply.code(order.status === 'cancelled' ? 200 : 202).send(order);
      },
    );

    app.put(
      '/orders/:id/status',
      {
        preValidation: requireStaff(WRITE),
        schema: {
          ...base,
          security: STAFF_SECURITY,
          summary:
            "Move an order to another status (staff): cancelled runs the compensations; every other status is the checkout saga's to set (409 ILLEGAL_TRANSITION by hand), and an order whose checkout is still running is moved by its saga alone (409).",
          params: IdParams,
          body: StatusBody,
          response: { 200: OrderView, 202: OrderView },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const tenantId = principal.tenantId;
        const id = request.params.id.toLowerCase();
        if (!isUuid(id)) throw new AppError('NOT_FOUND', `order ${request.params.id} not found`);
        const actor = principal.kind === 'user' ? `user:${principal.userId}` : `key:${principal.apiKeyId}`;
        const { status, reason } = request.body;
        if (status === 'cancelled') {
          const { sagaId } = await cancelOrder(deps, tenantId, id, {
            actor,
            reason: reason ?? 'cancelled by staff',
            mayCancel: () => true,
          });
          const order = await settle(tenantId, id, sagaId ? runner.run(tenantId, sagaId) : undefined);
          return reply.code(order.status === 'cancelled' ? 200 : 202).send(order);
        }
        return withTenant(deps.db, tenantId, async (trx) => {
          const order = await deps.orders.get(trx, tenantId, id, { lock: true });
          if (!order) throw new AppError('NOT_FOUND', `order ${id} not found`);
          const saga = await findSaga(trx as CheckoutTrx, { orderId: id });
          if (saga && (saga.status === 'running' || saga.status === 'compensating')) {
            throw new AppError(
              'CONFLICT',
              `order ${order.name} is moved by its checkout, which is still running`,
            );
          }
          // Every other status says what the checkout did (stock reserved, payment taken, the order
          // completed, or failed with its reason): only the saga moves an order there. By hand, a
          // flash sale's order waiting for its payment would be completed without it.
          throw new AppError(
            'ILLEGAL_TRANSITION',
            `order cannot go from ${order.status} to ${status} by hand`,
            {
              resource: 'order',
              from: order.status,
              to: status,
            },
          );
        });
      },
    );

    app.get(
      '/orders/:id/saga',
      {
        preValidation: requireStaff('orders:read'),
        schema: {
          ...base,
          security: STAFF_SECURITY,
          summary:
            "The order's checkout saga: where it stands, and every step's attempts, timings and compensations",
          params: IdParams,
          response: { 200: SagaView },
        },
      },
      async (request) => {
        const tenantId = principalOf(request).tenantId;
        const id = request.params.id.toLowerCase();
        const notFound = new AppError('NOT_FOUND', `no checkout saga for order ${request.params.id}`);
        if (!isUuid(id)) throw notFound;
        return withTenant(deps.db, tenantId, async (anyTrx) => {
          const trx = anyTrx as CheckoutTrx;
          const saga = await findSaga(trx, { orderId: id });
          if (!saga) throw notFound;
          const steps = await listSteps(trx, saga.id);
          const iso = (d: Date | null) => (d ? d.toISOString() : null);
          return {
            id: saga.id,
            orderId: saga.orderId,
            status: saga.status,
            step: saga.step,
            failure: saga.failure,
            cancelRequested: saga.cancelRequested,
            deadlineAt: iso(saga.deadlineAt),
            createdAt: saga.createdAt.toISOString(),
            updatedAt: saga.updatedAt.toISOString(),
            finishedAt: iso(saga.finishedAt),
            steps: steps.map((s) => ({
              step: s.step,
              action: s.action,
              attempt: s.attempt,
              status: s.status,
              output: s.output,
              error: s.error,
              startedAt: s.startedAt.toISOString(),
              finishedAt: iso(s.finishedAt),
              durationMs: s.finishedAt ? s.finishedAt.getTime() - s.startedAt.getTime() : null,
            })),
          };
        });
      },
    );
  };
}
