import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { withTenant } from '../platform/db/index.ts';
import { eventMetaOf, requireStaff } from '../platform/http/index.ts';
import { actorOf, type InventoryDeps } from './deps.ts';
import { getReservation } from './reservation-store.ts';
import { ExtendBody, KeyBody, KeyParams, ReservationView, ReserveBody, SECURITY } from './schemas.ts';

const base = { tags: ['inventory'], security: SECURITY };
const write = requireStaff('inventory:write');
const read = requireStaff('inventory:read');

/** Reservations: reserve (all or nothing, idempotent by key), extend, release, commit, read. */
export function reservationRoutes(deps: InventoryDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const { reservations } = deps;

    app.post(
      '/inventory/reserve',
      {
        preValidation: write,
        schema: {
          ...base,
          summary:
            'Hold stock of several variants for a key, all or nothing, until committed, released or expired (201; 200 for a key already used with the same lines)',
          body: ReserveBody,
          response: { 200: ReservationView, 201: ReservationView },
        },
      },
      async (request, reply) => {
        const { tenantId, actor } = actorOf(request);
        const { reservation, created } = await reservations.reserve(
          tenantId,
          { ...request.body, actor },
          eventMetaOf(request),
        );
        reply.code(created ? 201 : 200);
        return reservation;
      },
    );

    app.post(
      '/inventory/extend',
      {
        preValidation: write,
        schema: {
          ...base,
          summary: 'Hold an active reservation longer: it now expires ttlSeconds from now',
          body: ExtendBody,
          response: { 200: ReservationView },
        },
      },
      async (request) => {
        const { tenantId, actor } = actorOf(request);
        const { key, ttlSeconds } = request.body;
        return reservations.extend(tenantId, key, ttlSeconds, actor, eventMetaOf(request));
      },
    );

    app.post(
      '/inventory/release',
      {
        preValidation: write,
        schema: {
          ...base,
          summary: 'Give a reservation’s stock back (idempotent; a committed one is 409)',
          body: KeyBody,
          response: { 200: ReservationView },
        },
      },
      async (request) => {
        const { tenantId, actor } = actorOf(request);
        return reservations.release(tenantId, request.body.key, actor, eventMetaOf(request));
      },
    );

    app.post(
      '/inventory/commit',
      {
        preValidation: write,
        schema: {
          ...base,
          summary:
            'Sell what a reservation holds: on hand and reserved go down (idempotent; expired or released is 409)',
          body: KeyBody,
          response: { 200: ReservationView },
        },
      },
      async (request) => {
        const { tenantId, actor } = actorOf(request);
        return reservations.commit(tenantId, request.body.key, actor, eventMetaOf(request));
      },
    );

    app.post(
      '/inventory/return',
      {
        preValidation: write,
        schema: {
          ...base,
          summary:
            'Put what a committed reservation sold back on hand (a cancelled or returned order; idempotent; an uncommitted one is 409)',
          body: KeyBody,
          response: { 200: ReservationView },
        },
      },
      async (request) => {
        const { tenantId, actor } = actorOf(request);
        return reservations.returnStock(tenantId, request.body.key, actor, eventMetaOf(request));
      },
    );

    app.get(
      '/inventory/reservations/:key',
      {
        preValidation: read,
        schema: {
          ...base,
          summary: 'One reservation by its key',
          params: KeyParams,
          response: { 200: ReservationView },
        },
      },
      async (request) => {
        const { tenantId } = actorOf(request);
        return withTenant(deps.db, tenantId, (trx) => getReservation(trx, request.params.key));
      },
    );
  };
}
