import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../platform/db/index.ts';
import { AppError, type FieldError, principalOf, requireStaff } from '../platform/http/index.ts';
import { IdParams, STAFF_SECURITY } from './cart-schemas.ts';
import type { CartDeps } from './deps.ts';
import {
  ShippingOptionBody,
  ShippingOptionPatch,
  ShippingOptionView,
  TaxRateBody,
  TaxRatePatch,
  TaxRateView,
  TaxSettingsBody,
} from './settings-schemas.ts';
import {
  createShippingOption,
  deleteShippingOption,
  getShippingOption,
  listShippingOptions,
  updateShippingOption,
} from './shipping-option-store.ts';
import {
  createTaxRate,
  deleteTaxRate,
  getSettings,
  getTaxRate,
  listTaxRates,
  putSettings,
  updateTaxRate,
} from './tax-store.ts';

const CURRENCIES = new Set(Intl.supportedValuesOf('currency'));

function invalid(errors: FieldError[]): void {
  if (errors.length > 0) {
    throw new AppError('VALIDATION_FAILED', `${errors.length} field(s) failed validation`, { errors });
  }
}

/** Staff configure shipping (/shipping-options), tax rates (/tax-rates) and whether prices include tax (/tax-settings). */
export function settingsRoutes(deps: CartDeps) {
  const country = (value: string, pointer: string, errors: FieldError[]): string => {
    const checked = deps.addresses.checkCountryAndPostalCode(value, undefined);
    for (const e of checked.errors) errors.push({ ...e, pointer });
    return checked.country ?? value;
  };
  const countries = (values: string[] | undefined, errors: FieldError[]) => {
    const upper = values?.map((c, i) => country(c, `/countries/${i}`, errors));
    if (upper && new Set(upper).size !== upper.length) {
      errors.push({ in: 'body', pointer: '/countries', message: 'lists a country twice' });
    }
    return upper;
  };
  const currencies = (prices: Record<string, number> | undefined, errors: FieldError[]) => {
    for (const code of Object.keys(prices ?? {})) {
      if (!CURRENCIES.has(code)) {
        errors.push({ in: 'body', pointer: `/prices/${code}`, message: 'is not an ISO 4217 currency code' });
      }
    }
  };

  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const shipping = { preValidation: requireStaff('shipping:write') };
    const taxes = { preValidation: requireStaff('taxes:write') };
    const shippingBase = { tags: ['shipping'], security: STAFF_SECURITY };
    const taxBase = { tags: ['taxes'], security: STAFF_SECURITY };
    const tenant = (request: Parameters<typeof principalOf>[0]) => principalOf(request).tenantId;

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
        invalid(errors);
        const tenantId = tenant(request);
        const option = await withTenant(deps.db, tenantId, (trx) =>
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
        const tenantId = tenant(request);
        return { items: await withTenant(deps.db, tenantId, (trx) => listShippingOptions(trx, tenantId)) };
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
        const tenantId = tenant(request);
        return withTenant(deps.db, tenantId, (trx) => getShippingOption(trx, tenantId, request.params.id));
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
        invalid(errors);
        const tenantId = tenant(request);
        return withTenant(deps.db, tenantId, (trx) =>
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
        const tenantId = tenant(request);
        await withTenant(deps.db, tenantId, (trx) => deleteShippingOption(trx, tenantId, request.params.id));
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/tax-rates',
      {
        ...taxes,
        schema: {
          ...taxBase,
          operationId: 'createTaxRate',
          summary: "Add a tax rate for a country, or for one of its regions (which wins over the country's)",
          body: TaxRateBody,
          response: { 201: TaxRateView },
        },
      },
      async (request, reply) => {
        const errors: FieldError[] = [];
        const code = country(request.body.country, '/country', errors);
        invalid(errors);
        const tenantId = tenant(request);
        const rate = await withTenant(deps.db, tenantId, (trx) =>
          createTaxRate(trx, tenantId, {
            ...request.body,
            country: code,
            region: request.body.region ?? null,
          }),
        );
        reply.code(201).header('location', `/api/v1/tax-rates/${rate.id}`);
        return rate;
      },
    );

    app.get(
      '/tax-rates',
      {
        ...taxes,
        schema: {
          ...taxBase,
          operationId: 'listTaxRates',
          summary: "The store's tax rates by country and region (at most 1,000)",
          response: { 200: Type.Object({ items: Type.Array(TaxRateView) }) },
        },
      },
      async (request) => {
        const tenantId = tenant(request);
        return { items: await withTenant(deps.db, tenantId, (trx) => listTaxRates(trx, tenantId)) };
      },
    );

    app.get(
      '/tax-rates/:id',
      {
        ...taxes,
        schema: {
          ...taxBase,
          operationId: 'getTaxRate',
          summary: 'One tax rate',
          params: IdParams,
          response: { 200: TaxRateView },
        },
      },
      async (request) => {
        const tenantId = tenant(request);
        return withTenant(deps.db, tenantId, (trx) => getTaxRate(trx, tenantId, request.params.id));
      },
    );

    app.put(
      '/tax-rates/:id',
      {
        ...taxes,
        schema: {
          ...taxBase,
          operationId: 'updateTaxRate',
          summary: 'Change some fields of a tax rate',
          params: IdParams,
          body: TaxRatePatch,
          response: { 200: TaxRateView },
        },
      },
      async (request) => {
        const errors: FieldError[] = [];
        const code =
          request.body.country === undefined ? undefined : country(request.body.country, '/country', errors);
        invalid(errors);
        const tenantId = tenant(request);
        return withTenant(deps.db, tenantId, (trx) =>
          updateTaxRate(trx, tenantId, request.params.id, {
            ...request.body,
            ...(code ? { country: code } : {}),
          }),
        );
      },
    );

    app.delete(
      '/tax-rates/:id',
      {
        ...taxes,
        schema: {
          ...taxBase,
          operationId: 'deleteTaxRate',
          summary: 'Delete a tax rate',
          params: IdParams,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        const tenantId = tenant(request);
        await withTenant(deps.db, tenantId, (trx) => deleteTaxRate(trx, tenantId, request.params.id));
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/tax-settings',
      {
        ...taxes,
        schema: {
          ...taxBase,
          operationId: 'getTaxSettings',
          summary: 'Whether catalog prices include tax',
          response: { 200: TaxSettingsBody },
        },
      },
      async (request) => {
        const tenantId = tenant(request);
        return withTenant(deps.db, tenantId, (trx) => getSettings(trx, tenantId));
      },
    );

    app.put(
      '/tax-settings',
      {
        ...taxes,
        schema: {
          ...taxBase,
          operationId: 'putTaxSettings',
          summary: 'Say whether catalog prices include tax; every cart is totalled that way from then on',
          body: TaxSettingsBody,
          response: { 200: TaxSettingsBody },
        },
      },
      async (request) => {
        const tenantId = tenant(request);
        return withTenant(deps.db, tenantId, (trx) => putSettings(trx, tenantId, request.body));
      },
    );
  };
}
