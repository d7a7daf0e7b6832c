import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../../platform/db/index.ts';
import { requireUser, userOf } from '../../platform/http/index.ts';
import type { IdentityDeps } from '../module.ts';
import { IdParams, SECURITY } from '../users/user-schemas.ts';
import { checkAddress, throwIfInvalid } from './address-rules.ts';
import { AddressPatchBody, AddressView, NewAddressBody } from './address-schemas.ts';
import { createAddress, deleteAddress, getAddress, listAddresses, updateAddress } from './address-store.ts';

const base = { tags: ['addresses'], security: SECURITY };
// Schema errors are attached rather than thrown, so the handler reports them together with the
// country and postal code rules in one answer.
const route = { preValidation: requireUser(), attachValidation: true };

const asRecord = (body: unknown): Record<string, unknown> =>
  typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};

/** /users/addresses: the signed-in user's own billing and shipping addresses. */
export function addressRoutes(deps: IdentityDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/users/addresses',
      {
        ...route,
        schema: { ...base, summary: 'Add an address', body: NewAddressBody, response: { 201: AddressView } },
      },
      async (request, reply) => {
        const raw = asRecord(request.body);
        const checked = checkAddress(raw['country'], raw['postalCode'], raw['region'] ?? null);
        throwIfInvalid(request.validationError, checked.errors);
        const { isDefault, ...body } = request.body;
        const { tenantId, userId } = userOf(request);
        const fields = {
          ...body,
          line2: body.line2 ?? null,
          phone: body.phone ?? null,
          country: checked.country!,
          postalCode: checked.postalCode!,
          region: checked.region ?? null,
        };
        const address = await withTenant(deps.db, tenantId, (trx) =>
          createAddress(trx, { tenantId, userId }, fields, isDefault),
        );
        reply.code(201).header('location', `/api/v1/users/addresses/${address.id}`);
        return address;
      },
    );

    app.get(
      '/users/addresses',
      {
        preValidation: route.preValidation,
        schema: {
          ...base,
          summary: 'Your addresses, defaults first',
          response: { 200: Type.Object({ items: Type.Array(AddressView) }) },
        },
      },
      async (request) => {
        const { tenantId, userId } = userOf(request);
        return {
          items: await withTenant(deps.db, tenantId, (trx) => listAddresses(trx, { tenantId, userId })),
        };
      },
    );

    app.get(
      '/users/addresses/:id',
      {
        preValidation: route.preValidation,
        schema: {
          ...base,
          summary: 'One of your addresses',
          params: IdParams,
          response: { 200: AddressView },
        },
      },
      async (request) => {
        const { tenantId, userId } = userOf(request);
        return withTenant(deps.db, tenantId, (trx) =>
          getAddress(trx, { tenantId, userId }, request.params.id),
        );
      },
    );

    app.put(
      '/users/addresses/:id',
      {
        ...route,
        schema: {
          ...base,
          summary: 'Change some fields of an address',
          params: IdParams,
          body: AddressPatchBody,
          response: { 200: AddressView },
        },
      },
      async (request) => {
        const raw = asRecord(request.body);
        throwIfInvalid(
          request.validationError,
          checkAddress(raw['country'], raw['postalCode'], raw['region']).errors,
        );
        const { isDefault, country, postalCode, region, ...changes } = request.body;
        const { tenantId, userId } = userOf(request);
        const owner = { tenantId, userId };
        return withTenant(deps.db, tenantId, async (trx) => {
          let place = {};
          if (country !== undefined || postalCode !== undefined || region !== undefined) {
            // A new country must still fit the stored postal code and region, and the other way
            // round; a change of the postal code alone leaves the region unchecked.
            const current = await getAddress(trx, owner, request.params.id);
            const placeChanged = country !== undefined || region !== undefined;
            const checked = checkAddress(
              country ?? current.country,
              postalCode ?? current.postalCode,
              placeChanged ? (region === undefined ? current.region : region) : undefined,
            );
            throwIfInvalid(undefined, checked.errors);
            place = {
              country: checked.country!,
              postalCode: checked.postalCode!,
              ...(checked.region !== undefined ? { region: checked.region } : {}),
            };
          }
          return updateAddress(trx, owner, request.params.id, { ...changes, ...place }, isDefault);
        });
      },
    );

    app.delete(
      '/users/addresses/:id',
      {
        preValidation: route.preValidation,
        schema: {
          ...base,
          summary: 'Delete an address; a deleted default hands over to your most recent other one',
          params: IdParams,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        const { tenantId, userId } = userOf(request);
        await withTenant(deps.db, tenantId, (trx) =>
          deleteAddress(trx, { tenantId, userId }, request.params.id),
        );
        return reply.code(204).send(null);
      },
    );
  };
}
