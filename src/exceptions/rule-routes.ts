import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../platform/db/index.ts';
import { Nullable, principalOf, requireOperator, SECURED } from '../platform/http/index.ts';
import type { ExceptionsDeps } from './deps.ts';
import {
  createRule,
  deleteRule,
  getRule,
  listRules,
  MAX_POSITION,
  MAX_RULES,
  replaceRule,
  toRuleView,
} from './rule-store.ts';
import { CATEGORIES, type ExceptionsTrx, INTERFACE_TYPES, SEVERITIES } from './tables.ts';

const base = { tags: ['exceptions'], security: SECURED };
const read = requireOperator('exceptions:read');
const write = requireOperator('exceptions:write');

const Uuid = Type.String({ format: 'uuid' });
const Time = Type.String({ format: 'date-time' });
const Text = (description: string) => Type.String({ minLength: 1, maxLength: 200, description });
const InterfaceType = Type.Enum([...INTERFACE_TYPES]);
const Category = Type.Enum([...CATEGORIES]);
const Severity = Type.Enum([...SEVERITIES]);

const Match = Type.Object(
  {
    interfaceType: Type.Optional(InterfaceType),
    operation: Type.Optional(Text('Equals the exception’s operation')),
    reasonContains: Type.Optional(
      Text('The reason contains this text, in any case (a plain substring: never a pattern)'),
    ),
    customerId: Type.Optional(Text('Equals the exception’s customer id')),
  },
  { additionalProperties: false, description: 'Every condition given must hold; none: every exception' },
);
const Settings = Type.Object(
  {
    category: Type.Optional(Category),
    severity: Type.Optional(Severity),
    retryable: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1, description: 'What the rule sets (at least one)' },
);
const RuleBody = Type.Object(
  {
    name: Text('For people'),
    position: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_POSITION,
        description:
          'Rules are tried by position, lowest first; the first that matches applies (Default: after the last)',
      }),
    ),
    enabled: Type.Optional(Type.Boolean({ description: '(Default: true)' })),
    match: Type.Optional(Match),
    set: Settings,
  },
  { additionalProperties: false },
);
const RuleView = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    position: Type.Integer(),
    enabled: Type.Boolean(),
    match: Type.Object({
      interfaceType: Nullable(InterfaceType),
      operation: Nullable(Type.String()),
      reasonContains: Nullable(Type.String()),
      customerId: Nullable(Type.String()),
    }),
    set: Type.Object({
      category: Nullable(Category),
      severity: Nullable(Severity),
      retryable: Nullable(Type.Boolean()),
    }),
    createdAt: Time,
    updatedAt: Time,
  },
  { title: 'ExceptionRule' },
);
const RuleList = Type.Object({ items: Type.Array(RuleView) });
const IdParams = Type.Object({ id: Uuid });

/**
 * /exceptions/rules: the tenant's classification rules (operators and admins; API keys with
 * exceptions:read or exceptions:write). The first enabled rule that matches an exception, by
 * position, overrides the default category, severity and retryable (see classify.ts).
 */
export function ruleRoutes(deps: ExceptionsDeps) {
  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();
    const inTenant = <T>(tenantId: string, fn: (trx: ExceptionsTrx) => Promise<T>) =>
      withTenant(deps.db, tenantId, (trx) => fn(trx as ExceptionsTrx));

    app.post(
      '/exceptions/rules',
      {
        preValidation: write,
        schema: {
          ...base,
          summary: `Add a classification rule (at most ${MAX_RULES} per tenant: 409 CONFLICT past that)`,
          body: RuleBody,
          response: { 201: RuleView },
        },
      },
      async (request, reply) => {
        const { tenantId } = principalOf(request);
        const rule = await inTenant(tenantId, (trx) => createRule(trx, tenantId, request.body));
        reply.code(201).header('location', `/api/v1/exceptions/rules/${rule.id}`);
        return toRuleView(rule);
      },
    );

    app.get(
      '/exceptions/rules',
      {
        preValidation: read,
        schema: {
          ...base,
          summary: 'The tenant’s classification rules in the order they are tried',
          response: { 200: RuleList },
        },
      },
      async (request) => {
        const rules = await inTenant(principalOf(request).tenantId, listRules);
        return { items: rules.map(toRuleView) };
      },
    );

    app.get(
      '/exceptions/rules/:id',
      {
        preValidation: read,
        schema: {
          ...base,
          summary: 'One classification rule',
          params: IdParams,
          response: { 200: RuleView },
        },
      },
      async (request) =>
        toRuleView(await inTenant(principalOf(request).tenantId, (trx) => getRule(trx, request.params.id))),
    );

    app.put(
      '/exceptions/rules/:id',
      {
        preValidation: write,
        schema: {
          ...base,
          summary: 'Replace a classification rule (conditions and settings left out are cleared)',
          params: IdParams,
          body: RuleBody,
          response: { 200: RuleView },
        },
      },
      async (request) =>
        toRuleView(
          await inTenant(principalOf(request).tenantId, (trx) =>
            replaceRule(trx, request.params.id, request.body),
          ),
        ),
    );

    app.delete(
      '/exceptions/rules/:id',
      {
        preValidation: write,
        schema: {
          ...base,
          summary: 'Delete a classification rule',
          params: IdParams,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        await inTenant(principalOf(request).tenantId, (trx) => deleteRule(trx, request.params.id));
        return reply.code(204).send(null);
      },
    );
  };
}
