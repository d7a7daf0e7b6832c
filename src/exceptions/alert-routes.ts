import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { withTenant } from '../platform/db/index.ts';
import { actorOf, Nullable, principalOf, requireOperator, SECURED } from '../platform/http/index.ts';
import {
  deleteRule,
  getRule,
  insertRule,
  listRules,
  MAX_ALERT_RULES,
  updateRule,
} from './alert-rule-store.ts';
import { recordAudit } from './audit.ts';
import type { ExceptionsDeps } from './deps.ts';
import { acknowledgeFired, getFired, listFired } from './fired-alert-store.ts';
import { ALERT_KINDS, CATEGORIES, type ExceptionsTrx, INTERFACE_TYPES, SEVERITIES } from './tables.ts';

const base = { tags: ['exceptions'], security: SECURED };
const read = requireOperator('exceptions:read');
const write = requireOperator('exceptions:write');

const Uuid = Type.String({ format: 'uuid' });
const Time = Type.String({ format: 'date-time' });
const Kind = Type.Enum([...ALERT_KINDS], {
  description:
    'severity: an exception at or above minSeverity; retries: an exception with failedRetries failed retries; rate: more than threshold exceptions of one group seen within windowMinutes',
});
const Severity = Type.Enum([...SEVERITIES]);
const InterfaceType = Type.Enum([...INTERFACE_TYPES]);
const Category = Type.Enum([...CATEGORIES]);

const ruleFields = {
  name: Type.String({ minLength: 1, maxLength: 200 }),
  enabled: Type.Boolean({ description: '(Default: true)' }),
  minSeverity: Nullable(Severity),
  failedRetries: Nullable(Type.Integer({ minimum: 1, maximum: 100, description: 'retries rules' })),
  threshold: Nullable(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'rate rules' })),
  windowMinutes: Nullable(
    Type.Integer({ minimum: 1, maximum: 10_080, description: 'rate rules (a week at most)' }),
  ),
  interfaceType: Nullable(InterfaceType),
  category: Nullable(Category),
};
const optional = Object.fromEntries(Object.entries(ruleFields).map(([k, v]) => [k, Type.Optional(v)])) as {
  [K in keyof typeof ruleFields]: ReturnType<typeof Type.Optional<(typeof ruleFields)[K]>>;
};

const NewRuleBody = Type.Object(
  { ...optional, name: ruleFields.name, kind: Kind },
  { additionalProperties: false },
);
const RulePatchBody = Type.Object(
  { ...optional, kind: Type.Optional(Kind) },
  { additionalProperties: false, minProperties: 1 },
);
const RuleView = Type.Object(
  {
    id: Uuid,
    ...ruleFields,
    enabled: Type.Boolean(),
    kind: Kind,
    createdAt: Time,
    updatedAt: Time,
  },
  { title: 'ExceptionAlertRule' },
);
const Page = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Page size (Default: 50)' })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
});
const RuleQuery = Type.Object(
  { ...Page.properties, kind: Type.Optional(Kind) },
  { additionalProperties: false },
);
const RulePage = Type.Object({ items: Type.Array(RuleView), nextCursor: Nullable(Type.String()) });
const IdParams = Type.Object({ id: Uuid });

const Money = Type.Object({ currency: Type.String(), amount: Type.Integer() });
const Impact = Type.Object(
  {
    exceptions: Type.Integer({ description: "The group's open exceptions" }),
    occurrences: Type.Integer(),
    affectedCustomers: Type.Integer({ description: 'Distinct customer ids' }),
    affectedOrders: Type.Integer({ description: 'Distinct order ids' }),
    moneyAtStake: Type.Array(Money, { description: 'Sum of amounts per currency, minor units' }),
    exact: Type.Boolean({
      description:
        'False when the group holds more exceptions than are read (10,000 newest): the figures are then lower bounds',
    }),
    assessedAt: Time,
  },
  { additionalProperties: true },
);
const FiredView = Type.Object(
  {
    id: Uuid,
    ruleId: Uuid,
    ruleName: Type.String(),
    kind: Kind,
    groupId: Uuid,
    exceptionId: Nullable(Uuid),
    transactionId: Nullable(Type.String()),
    escalationTeam: Type.String(),
    impact: Impact,
    suppressed: Type.Integer({ description: 'Matches while it was open, not alerted again' }),
    firedAt: Time,
    acknowledgedBy: Nullable(Type.String()),
    acknowledgedAt: Nullable(Time),
    acknowledgeNote: Nullable(Type.String()),
  },
  { title: 'ExceptionAlert' },
);
const FiredQuery = Type.Object(
  {
    ...Page.properties,
    state: Type.Optional(
      Type.Union([Type.Literal('open'), Type.Literal('all')], { description: '(Default: open)' }),
    ),
  },
  { additionalProperties: false },
);
const FiredPage = Type.Object({ items: Type.Array(FiredView), nextCursor: Nullable(Type.String()) });
const AcknowledgeBody = Type.Object(
  { note: Type.Optional(Type.String({ minLength: 1, maxLength: 4000 })) },
  { additionalProperties: false },
);

/** /exceptions/alerts: alert rules (operators and admins), and the alerts they fired. */
export function alertRoutes(deps: ExceptionsDeps) {
  const inTenant = <T>(tenantId: string, fn: (trx: ExceptionsTrx) => Promise<T>) =>
    withTenant(deps.db, tenantId, fn);

  return async (root: FastifyInstance) => {
    const app = root.withTypeProvider<TypeBoxTypeProvider>();

    app.post(
      '/exceptions/alerts',
      {
        preValidation: write,
        schema: {
          ...base,
          operationId: 'createAlertRule',
          summary: `Add an alert rule (at most ${MAX_ALERT_RULES} per tenant: 409 CONFLICT past that)`,
          body: NewRuleBody,
          response: { 201: RuleView },
        },
      },
      async (request, reply) => {
        const { tenantId } = actorOf(request);
        const rule = await inTenant(tenantId, (trx) => insertRule(trx, tenantId, request.body));
        reply.code(201).header('location', `/api/v1/exceptions/alerts/${rule.id}`);
        return rule;
      },
    );

    app.get(
      '/exceptions/alerts',
      {
        preValidation: read,
        schema: {
          ...base,
          operationId: 'listAlertRules',
          summary: "The tenant's alert rules, oldest first",
          querystring: RuleQuery,
          response: { 200: RulePage },
        },
      },
      async (request) =>
        inTenant(principalOf(request).tenantId, (trx) =>
          listRules(trx, {
            limit: request.query.limit ?? 50,
            cursor: request.query.cursor,
            kind: request.query.kind,
          }),
        ),
    );

    app.get(
      '/exceptions/alerts/fired',
      {
        preValidation: read,
        schema: {
          ...base,
          operationId: 'listFiredAlerts',
          summary: 'Alerts fired, newest first: open ones (the default) or all',
          querystring: FiredQuery,
          response: { 200: FiredPage },
        },
      },
      async (request) =>
        inTenant(principalOf(request).tenantId, (trx) =>
          listFired(trx, {
            state: request.query.state ?? 'open',
            limit: request.query.limit ?? 50,
            cursor: request.query.cursor,
          }),
        ),
    );

    app.get(
      '/exceptions/alerts/fired/:id',
      {
        preValidation: read,
        schema: {
          ...base,
          operationId: 'getFiredAlert',
          summary: 'One fired alert',
          params: IdParams,
          response: { 200: FiredView },
        },
      },
      async (request) => inTenant(principalOf(request).tenantId, (trx) => getFired(trx, request.params.id)),
    );

    app.put(
      '/exceptions/alerts/fired/:id/acknowledge',
      {
        preValidation: write,
        schema: {
          ...base,
          operationId: 'acknowledgeAlert',
          summary:
            'Acknowledge an alert: the next firing of its rule for its group makes a new alert (acknowledging again changes nothing)',
          params: IdParams,
          body: AcknowledgeBody,
          response: { 200: FiredView },
        },
      },
      async (request) => {
        const { tenantId, actor } = actorOf(request);
        return inTenant(tenantId, async (trx) => {
          const note = request.body.note ?? null;
          const { alert, changed } = await acknowledgeFired(trx, request.params.id, actor, note);
          if (changed && alert.exceptionId && alert.kind !== 'rate') {
            await recordAudit(trx, [
              {
                tenantId,
                exceptionId: alert.exceptionId,
                action: 'alert.acknowledged',
                actor,
                note,
                details: { alertId: alert.id },
              },
            ]);
          }
          return alert;
        });
      },
    );

    app.get(
      '/exceptions/alerts/:id',
      {
        preValidation: read,
        schema: {
          ...base,
          operationId: 'getAlertRule',
          summary: 'One alert rule',
          params: IdParams,
          response: { 200: RuleView },
        },
      },
      async (request) => inTenant(principalOf(request).tenantId, (trx) => getRule(trx, request.params.id)),
    );

    app.put(
      '/exceptions/alerts/:id',
      {
        preValidation: write,
        schema: {
          ...base,
          operationId: 'updateAlertRule',
          summary:
            "Change an alert rule's fields given (fields of its former kind are dropped when the kind changes)",
          params: IdParams,
          body: RulePatchBody,
          response: { 200: RuleView },
        },
      },
      async (request) =>
        inTenant(actorOf(request).tenantId, (trx) => updateRule(trx, request.params.id, request.body)),
    );

    app.delete(
      '/exceptions/alerts/:id',
      {
        preValidation: write,
        schema: {
          ...base,
          operationId: 'deleteAlertRule',
          summary: 'Delete an alert rule and the alerts it fired',
          params: IdParams,
          response: { 204: Type.Null() },
        },
      },
      async (request, reply) => {
        await inTenant(actorOf(request).tenantId, (trx) => deleteRule(trx, request.params.id));
        return reply.code(204).send(null);
      },
    );
  };
}
