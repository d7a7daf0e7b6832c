import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import type { DomainEvent } from '../platform/events/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import { alertRoutes } from './alert-routes.ts';
import { type AlertRuleRow, enabledRules, matchesFilters, toRule } from './alert-rule-store.ts';
import { type AuditEntry, recordAudit } from './audit.ts';
import type { ExceptionHooks, ExceptionsDeps } from './deps.ts';
import { assessImpact, escalationTeam } from './escalation.ts';
import { toView, type ViewedRow } from './exception-view.ts';
import { type AlertRow, toFired } from './fired-alert-store.ts';
import { EXCEPTION_EVENTS, publishExceptionEvents } from './outbound-events.ts';
import { createRateCounter } from './rate-rules.ts';
import type { ExceptionsTrx } from './tables.ts';

/** Who fires alerts, in the audit. */
const ACTOR = 'system:alerts';

/** One firing per (rule, group): the first matching exception names it, the others count as matches. */
function collect(firings: Map<string, Firing>, rule: AlertRuleRow, row: ViewedRow, matches = 1) {
  const key = `${rule.id}/${row.group_id}`;
  const seen = firings.get(key);
  if (seen) {
    seen.matches += matches;
    return;
  }
  firings.set(key, {
    rule,
    groupId: row.group_id,
    exceptionId: row.id,
    escalationTeam: escalationTeam(row),
    matches,
  });
}

/** One rule matched `matches` exceptions of one group; `exceptionId` is the one the alert names. */
export type Firing = {
  rule: AlertRuleRow;
  groupId: string;
  exceptionId: string;
  escalationTeam: string;
  matches: number;
};

/**
 * Records firings in one statement: a new alert per (rule, group) without an open one (its
 * suppressed: the extra matches), else the open alert's suppressed grows by the matches (the
 * partial unique index alerts_open decides, so concurrent captures agree). Returns the new alerts.
 */
export async function upsertAlerts(
  trx: ExceptionsTrx,
  tenantId: string,
  firings: Firing[],
): Promise<AlertRow[]> {
  if (firings.length === 0) return [];
  const ids = new Set<string>();
  const values = firings.map((f) => {
    const id = uuidv7();
    ids.add(id);
    return {
      id,
      tenant_id: tenantId,
      rule_id: f.rule.id,
      group_id: f.groupId,
      exception_id: f.exceptionId,
      escalation_team: f.escalationTeam,
      // Assessed right after, for the new alerts only: a suppressed firing costs no aggregate.
      impact: '{}',
      suppressed: f.matches - 1,
    };
  });
  const rows = await trx
    .insertInto('exceptions.alerts')
    .values(values)
    .onConflict((oc) =>
      oc
        .columns(['rule_id', 'group_id'])
        .where('acknowledged_at', 'is', null)
        .doUpdateSet((eb) => ({
          suppressed: sql<number>`${eb.ref('exceptions.alerts.suppressed')} + ${eb.ref('excluded.suppressed')} + 1`,
        })),
    )
    .returningAll()
    .execute();
  // A row that kept the id we generated was inserted; any other is an open alert we bumped.
  return rows.filter((r) => ids.has(r.id));
}

/**
 * Alert rules and CriticalExceptionAlert: the hooks capture and retry call in their transactions,
 * and the /exceptions/alerts routes.
 */
export function createAlerts(deps: ExceptionsDeps): {
  onCaptured: ExceptionHooks['onCaptured'];
  onRetryFailed: ExceptionHooks['onRetryFailed'];
  routes: (app: FastifyInstance) => Promise<void>;
} {
  const rates = createRateCounter();
  /**
   * Records the firings; each new alert gets its impact (one statement for all of them), an audit
   * entry and a CriticalExceptionAlert.
   */
  const fire = async (trx: ExceptionsTrx, tenantId: string, firings: Firing[], rows: ViewedRow[]) => {
    const created = await upsertAlerts(trx, tenantId, firings);
    if (created.length === 0) return;
    const impacts = await assessImpact(trx, [...new Set(created.map((a) => a.group_id))]);
    const assessed = created.map((alert) => ({ ...alert, impact: impacts.get(alert.group_id)! }));
    await sql`
      update exceptions.alerts a set impact = v.impact
      from jsonb_to_recordset(${JSON.stringify(assessed.map((a) => ({ id: a.id, impact: a.impact })))}::jsonb)
        as v(id uuid, impact jsonb)
      where a.id = v.id`.execute(trx);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const rules = new Map(firings.map((f) => [f.rule.id, f.rule]));
    const events: DomainEvent[] = [];
    const audits: AuditEntry[] = [];
    for (const alert of assessed) {
      const rule = rules.get(alert.rule_id)!;
      const exception = byId.get(alert.exception_id!)!;
      events.push(criticalAlert(alert, rule, exception));
      // A rate alert is about its group as a whole, not the one exception that tipped it.
      if (rule.kind !== 'rate') {
        audits.push({
          tenantId,
          exceptionId: exception.id,
          action: 'alert.fired',
          actor: ACTOR,
          details: {
            alertId: alert.id,
            ruleId: rule.id,
            rule: rule.name,
            escalationTeam: alert.escalation_team,
          },
        });
      }
    }
    await recordAudit(trx, audits);
    await publishExceptionEvents(deps.events, trx, tenantId, events);
  };

  return {
    async onCaptured(trx, tenantId, captured) {
      if (captured.length === 0) return;
      const rules = await enabledRules(trx, ['severity', 'rate']);
      if (rules.length === 0) return;
      const firings = new Map<string, Firing>();
      const over = await rates.over(trx, tenantId, rules, captured);
      rules.forEach((rule, i) => {
        for (const row of captured) {
          // A group past a rate rule's threshold fires once per matching exception of the batch.
          if (rule.kind === 'rate' && !over.has(`${i}/${row.group_id}`)) continue;
          if (matchesFilters(rule, row)) collect(firings, rule, row);
        }
      });
      await fire(trx, tenantId, [...firings.values()], captured);
    },

    async onRetryFailed(trx, tenantId, exception) {
      const rules = (await enabledRules(trx, ['retries'])).filter((r) => matchesFilters(r, exception));
      if (rules.length === 0) return;
      const { failed } = await trx
        .selectFrom('exceptions.retry_attempts')
        .select((eb) => eb.fn.countAll<number | string>().as('failed'))
        .where('exception_id', '=', exception.id)
        .where('status', '=', 'failed')
        .executeTakeFirstOrThrow();
      const firings = new Map<string, Firing>();
      for (const rule of rules) {
        if (Number(failed) >= (rule.failed_retries ?? Number.POSITIVE_INFINITY))
          collect(firings, rule, exception);
      }
      await fire(trx, tenantId, [...firings.values()], [exception]);
    },

    routes: alertRoutes(deps),
  };
}

/** 000's CriticalExceptionAlert: the alert, its rule, the exception, the team and the impact. */
function criticalAlert(alert: AlertRow, rule: AlertRuleRow, exception: ViewedRow): DomainEvent {
  const view = toFired({
    ...alert,
    rule_name: rule.name,
    kind: rule.kind,
    transaction_id: exception.transaction_id,
  });
  return {
    type: EXCEPTION_EVENTS.criticalAlert,
    subject: alert.id,
    // Correlated with the failure that fired it, so a tenant follows one transaction end to end.
    meta: { correlationId: exception.correlation_id ?? undefined },
    data: {
      alert: view,
      rule: toRule(rule),
      exception: toView(exception),
      escalationTeam: view.escalationTeam,
      impact: view.impact,
    },
  };
}
