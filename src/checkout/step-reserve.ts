import { AppError } from '../platform/http/index.ts';
import { undoPoolReservation } from './pool-units.ts';
import type { SagaStepDefinition } from './step-definition.ts';
import { reservationKey } from './step-keys.ts';
import { failed } from './step-outcome.ts';

export const reserveStep: SagaStepDefinition = {
  name: 'reserve',
  async local(trx, { deps, saga, order, actor, meta }) {
    const request = {
      lines: order.lines.map((l) => ({ variantId: l.variantId, quantity: l.quantity })),
      ttlSeconds: deps.ctx.config.reservationTtlSeconds,
      reference: `order:${order.id}`,
      actor,
    };
    try {
      // A pool's units (a flash sale's) move to the order's reservation: available stock is not touched.
      const inventory = deps.inventory.within(trx);
      const reservation = saga.stockPool
        ? await inventory.transfer(
            saga.tenantId,
            { ...request, from: saga.stockPool, to: reservationKey(order.id) },
            meta,
          )
        : await inventory.reserve(saga.tenantId, { ...request, key: reservationKey(order.id) }, meta);
      return { ok: true, output: { reservation: reservation.key, status: reservation.status } };
    } catch (error) {
      if (error instanceof AppError && error.code === 'INSUFFICIENT_STOCK') {
        return failed('out_of_stock', error.message);
      }
      throw error;
    }
  },
  invoked: (trx, { deps, saga, order, actor, meta }) =>
    deps.orders.transition(trx, saga.tenantId, order.id, 'inventory_reserved', { actor, meta, known: order }),
  async compensate({ deps, saga, order, actor, meta }) {
    const key = reservationKey(order.id);
    // A sale's units go back into its pool while it is open, committed ones too (pool-units.ts).
    if (saga.stockPool)
      return undoPoolReservation(deps, saga.tenantId, order, key, saga.stockPool, actor, meta);
    try {
      return (await deps.inventory.release(saga.tenantId, key, actor, meta)).status;
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      if (error.code === 'NOT_FOUND') return 'none';
      // Committed (the confirm step got that far): the units go back on hand.
      if (error.code === 'RESERVATION_NOT_ACTIVE') {
        return (await deps.inventory.returnStock(saga.tenantId, key, actor, meta)).status;
      }
      throw error;
    }
  },
};
