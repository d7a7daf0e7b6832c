import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { withTenant } from '../platform/db/index.ts';
import { AppError, eventMetaOf, requireStaff } from '../platform/http/index.ts';
import { actorOf, type InventoryDeps } from './deps.ts';
import { getReservation } from './reservation-store.ts';
import { ExtendBody, KeyBody, KeyParams, ReservationView, ReserveBody, SECURITY } from './schemas.ts';

const base = { tags: ['inventory'], security: SECURITY };
const write = requireStaff('inventory:write');
const read = requireStaff('inventory:read');

/**
 * Reservations another module holds and alone changes: a flash sale's pool and its side keys
 * (`flash-sale:…`), an order's (`order-<uuid>`, the checkout saga's). Over HTTP, an API key with
 * `inventory:write` released a running sale's pool (every admission then failed) or committed an
 * unpaid order's units; they are read here, and changed through their own module's routes.
 */
const MODULE_KEY = /^(flash-sale:|order-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$)/i;

function assertNotModuleKey(key: string): void {
  if (MODULE_KEY.test(key)) {
    throw new AppError(
      'FORBIDDEN',
      `reservation ${JSON.stringify(key)} belongs to ${key.startsWith('flash-sale:') ? 'a flash sale' : 'an order'}: change it through its own routes`,
    );
  }
}

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
        assertNotModuleKey(request.body.key);
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
        assertNotModuleKey(key);
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
        assertNotModuleKey(request.body.key);
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
        assertNotModuleKey(request.body.key);
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
        assertNotModuleKey(request.body.key);
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
