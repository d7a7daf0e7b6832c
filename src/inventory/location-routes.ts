import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../platform/db/index.ts';
import { requireStaff } from '../platform/http/index.ts';
import { actorOf, type InventoryDeps } from './deps.ts';
import {
  createLocation,
  deleteLocation,
  getLocation,
  listLocations,
  updateLocation,
} from './location-store.ts';
import { IdParams, LocationPatchBody, LocationView, NewLocationBody, SECURITY } from './schemas.ts';

const base = { tags: ['inventory'], security: SECURITY };
const write = requireStaff('inventory:write');
const read = requireStaff('inventory:read');

/** /inventory/locations: where stock is kept; every tenant has a default one. */
export function locationRoutes(deps: InventoryDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/inventory/locations',
      {
        preValidation: write,
        schema: {
          ...base,
          summary: 'Add a location',
          body: NewLocationBody,
          response: { 201: LocationView },
        },
      },
      async (request, reply) => {
        const { tenantId } = actorOf(request);
        const location = await withTenant(deps.db, tenantId, (trx) =>
          createLocation(trx, tenantId, request.body),
        );
        reply.code(201).header('location', `/api/v1/inventory/locations/${location.id}`);
        return location;
      },
    );

    app.get(
      '/inventory/locations',
      {
        preValidation: read,
        schema: {
          ...base,
          summary: "The tenant's locations, the default first (at most 200)",
          response: { 200: Type.Object({ items: Type.Array(LocationView) }) },
        },
      },
      async (request) => {
        const { tenantId } = actorOf(request);
        return { items: await withTenant(deps.db, tenantId, (trx) => listLocations(trx, tenantId)) };
      },
    );

    app.get(
      '/inventory/locations/:id',
      {
        preValidation: read,
        schema: { ...base, summary: 'One location', params: IdParams, response: { 200: LocationView } },
      },
      async (request) => {
        const { tenantId } = actorOf(request);
        return withTenant(deps.db, tenantId, (trx) => getLocation(trx, request.params.id));
      },
    );

    app.put(
      '/inventory/locations/:id',
      {
        preValidation: write,
        schema: {
          ...base,
          summary: 'Rename a location, change its code, or make it the default',
          params: IdParams,
          body: LocationPatchBody,
          response: { 200: LocationView },
        },
      },
      async (request) => {
        const { tenantId } = actorOf(request);
        return withTenant(deps.db, tenantId, (trx) =>
          updateLocation(trx, tenantId, request.params.id, request.body),
        );
      },
    );

    app.delete(
      '/inventory/locations/:id',
      {
        preValidation: write,
        schema: {
          ...base,
          summary:
            'Delete a location that holds no stock (the default cannot be deleted: 409 LOCATION_IN_USE)',
          params: IdParams,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        const { tenantId } = actorOf(request);
        await withTenant(deps.db, tenantId, (trx) => deleteLocation(trx, request.params.id));
        return reply.code(204).send(null);
      },
    );
  };
}
