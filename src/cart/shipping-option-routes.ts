import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { type FieldError, requireStaff } from '../platform/http/index.ts';
import { IdParams, STAFF_SECURITY } from './cart-schemas.ts';
import type { CartDeps } from './deps.ts';
import { inStaffTenant, settingsRules, throwIfInvalid } from './settings-rules.ts';
import { ShippingOptionBody, ShippingOptionPatch, ShippingOptionView } from './settings-schemas.ts';
import {
  createShippingOption,
  deleteShippingOption,
  getShippingOption,
  listShippingOptions,
  updateShippingOption,
} from './shipping-option-store.ts';

/** Staff configure flat-rate shipping: /shipping-options. */
export function shippingOptionRoutes(deps: CartDeps) {
  const { countries, currencies } = settingsRules(deps);
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const shipping = { preValidation: requireStaff('shipping:write') };
    const shippingBase = { tags: ['shipping'], security: STAFF_SECURITY };

    app.post(
      '/shipping-options',
      {
        ...shipping,
        schema: {
          ...shippingBase,
          operationId: 'createShippingOption',
          summary: 'Add a flat-rate shipping option: a price per currency for the countries listed',
          body: ShippingOptionBody,
          response: { 201: ShippingOptionView },
        },
      },
      async (request, reply) => {
        const errors: FieldError[] = [];
        const list = countries(request.body.countries, errors)!;
        currencies(request.body.prices, errors);
        throwIfInvalid(errors);
        const option = await inStaffTenant(deps, request, (trx, tenantId) =>
          createShippingOption(trx, tenantId, {
            ...request.body,
            countries: list,
            active: request.body.active ?? true,
          }),
        );
        reply.code(201).header('location', `/api/v1/shipping-options/${option.id}`);
        return option;
      },
    );

    app.get(
      '/shipping-options',
      {
        ...shipping,
        schema: {
          ...shippingBase,
          operationId: 'listShippingOptions',
          summary: "The store's shipping options (at most 200)",
          response: { 200: Type.Object({ items: Type.Array(ShippingOptionView) }) },
        },
      },
      async (request) => {
        return {
          items: await inStaffTenant(deps, request, (trx, tenantId) => listShippingOptions(trx, tenantId)),
        };
      },
    );

    app.get(
      '/shipping-options/:id',
      {
        ...shipping,
        schema: {
          ...shippingBase,
          operationId: 'getShippingOption',
          summary: 'One shipping option',
          params: IdParams,
          response: { 200: ShippingOptionView },
        },
      },
      async (request) => {
        return inStaffTenant(deps, request, (trx, tenantId) =>
          getShippingOption(trx, tenantId, request.params.id),
        );
      },
    );

    app.put(
      '/shipping-options/:id',
      {
        ...shipping,
        schema: {
          ...shippingBase,
          operationId: 'updateShippingOption',
          summary: 'Change some fields of a shipping option; carts it no longer serves lose it',
          params: IdParams,
          body: ShippingOptionPatch,
          response: { 200: ShippingOptionView },
        },
      },
      async (request) => {
        const errors: FieldError[] = [];
        const list = countries(request.body.countries, errors);
        currencies(request.body.prices, errors);
        throwIfInvalid(errors);
        return inStaffTenant(deps, request, (trx, tenantId) =>
          updateShippingOption(trx, tenantId, request.params.id, {
            ...request.body,
            ...(list ? { countries: list } : {}),
          }),
        );
      },
    );

    app.delete(
      '/shipping-options/:id',
      {
        ...shipping,
        schema: {
          ...shippingBase,
          operationId: 'deleteShippingOption',
          summary: 'Delete a shipping option; carts that chose it have none',
          params: IdParams,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        await inStaffTenant(deps, request, (trx, tenantId) =>
          deleteShippingOption(trx, tenantId, request.params.id),
        );
        return reply.code(204).send(null);
      },
    );
  };
}
