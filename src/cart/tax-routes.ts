import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { type FieldError, requireStaff } from '../platform/http/index.ts';
import { IdParams, STAFF_SECURITY } from './cart-schemas.ts';
import type { CartDeps } from './deps.ts';
import { inStaffTenant, settingsRules, throwIfInvalid } from './settings-rules.ts';
import { TaxRateBody, TaxRatePatch, TaxRateView, TaxSettingsBody } from './settings-schemas.ts';
import {
  createTaxRate,
  deleteTaxRate,
  getSettings,
  getTaxRate,
  listTaxRates,
  putSettings,
  updateTaxRate,
} from './tax-store.ts';

/**
 * A rate's region without the spaces around it (addresses match it so, and " CA" would otherwise
 * be a second rate for CA); a blank one is 400. In a country whose regions are listed (identity's
 * regions.ts) it is stored as its code and must be one of them, as the address book's check reads
 * an address's region. undefined and null pass as they are.
 */
function regionOf(
  deps: CartDeps,
  country: string,
  region: string | null | undefined,
  errors: FieldError[],
): string | null | undefined {
  if (region === undefined || region === null) return region;
  const trimmed = region.trim();
  if (trimmed === '') {
    errors.push({ in: 'body', pointer: '/region', message: 'is blank' });
    return trimmed;
  }
  // The country's own errors are the caller's (settingsRules); an unknown country keeps the text.
  const checked = deps.addresses.checkAddress(country, undefined, trimmed);
  errors.push(...checked.errors.filter((e) => e.pointer === '/region'));
  return checked.region ?? trimmed;
}

/** Staff configure tax rates (/tax-rates) and whether prices include tax (/tax-settings). */
export function taxRoutes(deps: CartDeps) {
  const { country } = settingsRules(deps);
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const taxes = { preValidation: requireStaff('taxes:write') };
    const taxBase = { tags: ['taxes'], security: STAFF_SECURITY };

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
        const region = regionOf(deps, code, request.body.region, errors);
        throwIfInvalid(errors);
        const rate = await inStaffTenant(deps, request, (trx, tenantId) =>
          createTaxRate(trx, tenantId, { ...request.body, country: code, region: region ?? null }),
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
        return { items: await inStaffTenant(deps, request, (trx, tenantId) => listTaxRates(trx, tenantId)) };
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
        return inStaffTenant(deps, request, (trx, tenantId) => getTaxRate(trx, tenantId, request.params.id));
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
        const { id } = request.params;
        const errors: FieldError[] = [];
        const code =
          request.body.country === undefined ? undefined : country(request.body.country, '/country', errors);
        // A blank region is named in the same 400 as a bad country (its list is checked below).
        if (errors.length > 0) regionOf(deps, '', request.body.region, errors);
        throwIfInvalid(errors);
        return inStaffTenant(deps, request, async (trx, tenantId) => {
          // The region is checked against the country the rate will have: a new country's list
          // applies to the region it keeps, and a new region to the country it keeps.
          const current = await getTaxRate(trx, tenantId, id);
          const changes = { country: code ?? current.country, region: request.body.region };
          if (code !== undefined && changes.region === undefined) changes.region = current.region;
          const region = regionOf(deps, changes.country, changes.region, errors);
          throwIfInvalid(errors);
          return updateTaxRate(trx, tenantId, id, {
            ...request.body,
            ...(code ? { country: code } : {}),
            ...(region !== undefined ? { region } : {}),
          });
        });
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
        await inStaffTenant(deps, request, (trx, tenantId) =>
          deleteTaxRate(trx, tenantId, request.params.id),
        );
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
        return inStaffTenant(deps, request, (trx, tenantId) => getSettings(trx, tenantId));
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
        return inStaffTenant(deps, request, (trx, tenantId) => putSettings(trx, tenantId, request.body));
      },
    );
  };
}
