import { sql } from 'kysely';
import { inGroupOrder } from './group-scan.ts';
import type { ExceptionsTrx, InterfaceType } from './tables.ts';

/**
 * Who an alert goes to, by the failure's reason: the first entry whose words appear in the reason
 * (case-insensitive, at the start of a word, so "card" matches "card expired" and not "discarded").
 * Our own fixed patterns: nothing a tenant writes becomes a regex.
 */
export const REASON_TEAMS: ReadonlyArray<{ team: string; words: RegExp }> = [
  { team: 'payments', words: /\b(payment|declin|card|insufficient funds|refund|charge|3ds|fraud)/i },
  { team: 'fulfilment', words: /\b(stock|inventory|out of stock|backorder|warehouse|shipment|carrier)/i },
  {
    team: 'integrations',
    words: /\b(timeout|timed out|network|connection|unreachable|refused|dns|tls|5\d\d\b)/i,
  },
  { team: 'data-quality', words: /\b(validation|invalid|missing|required|malformed|schema|format)/i },
];

/** Otherwise by the interface that failed. */
export const INTERFACE_TEAMS: Readonly<Record<InterfaceType, string>> = {
  ORDER: 'order-operations',
  COLLECTION: 'finance',
  DISTRIBUTION: 'logistics',
  VALIDATION: 'data-quality',
};

/** The escalation team of an exception: by its reason, else by its interface type. */
export function escalationTeam(exception: { reason: string; interface_type: InterfaceType }): string {
  // Reasons are at most 4,000 characters (migration 0031); the patterns are linear.
  for (const { team, words } of REASON_TEAMS) if (words.test(exception.reason)) return team;
  return INTERFACE_TEAMS[exception.interface_type];
}

/** An alert's impact assessment: what the group's open exceptions put at stake. */
export type Impact = {
  /** Open exceptions in the group, and their occurrences (repeats counted). */
  exceptions: number;
  occurrences: number;
  /** Distinct customer ids and order ids among them. */
  affectedCustomers: number;
  affectedOrders: number;
  /** Sum of their amounts per currency, in minor units, largest first. */
  moneyAtStake: Array<{ currency: string; amount: number }>;
  /**
   * False when the group holds more than IMPACT_CAP exceptions: the figures are then those of
   * its IMPACT_CAP newest (lower bounds), as a capped count answers elsewhere (catalog facets).
   */
  exact: boolean;
  assessedAt: string;
};

/** Statuses still needing someone: a succeeded retry, a resolution or a closure ends an exception's impact. */
export const OPEN_STATUSES = ['NEW', 'ACKNOWLEDGED', 'RETRY_IN_PROGRESS', 'RETRIED_FAILED'] as const;

/** The exceptions of a group an impact assessment reads at most (its newest); README "Escalation teams and impact". */
export const IMPACT_CAP = 10_000;

/**
 * The impact of each group's open exceptions, in one statement for all the groups. Each group is
 * read newest first through exceptions_group_seen (migration 0045), at most `cap` + 1 of its
 * exceptions whatever their status: the + 1 only tells whether there are more (then `exact` is
 * false and the figures are of the `cap` newest). Its cost does not grow with the group.
 */
export async function assessImpact(
  trx: ExceptionsTrx,
  groupIds: string[],
  cap = IMPACT_CAP,
): Promise<Map<string, Impact>> {
  const impacts = new Map<string, Impact>();
  if (groupIds.length === 0) return impacts;
  const open = sql.join(OPEN_STATUSES.map((s) => sql.lit(s)));
  const { rows } = await inGroupOrder(trx, () =>
    sql<{
      group_id: string;
      read: number | string;
      exceptions: number | string | null;
      occurrences: number | string | null;
      customers: number | string | null;
      orders: number | string | null;
      money: Array<{ currency: string; amount: string }> | string | null;
      at: Date | string;
    }>`
    with newest as materialized (
      select g.group_id, r.status, r.occurrences, r.customer_id, r.order_id, r.amount, r.currency, r.n
      from unnest(${groupIds}::uuid[]) as g(group_id)
      cross join lateral (
        select e.status, e.occurrences, e.customer_id, e.order_id, e.amount, e.currency,
          row_number() over (order by e.last_seen desc) as n
        from exceptions.exceptions e
        where e.group_id = g.group_id
        order by e.last_seen desc
        limit ${cap + 1}
      ) as r
    ),
    open as (select * from newest where n <= ${cap} and status in (${open})),
    money as (
      select group_id, json_agg(json_build_object('currency', currency, 'amount', amount::text)
        order by amount desc, currency) as money
      from (
        select group_id, currency, sum(amount) as amount from open
        where amount is not null and currency is not null
        group by group_id, currency
      ) as sums
      group by group_id
    )
    select r.group_id, r.read, c.exceptions, c.occurrences, c.customers, c.orders, m.money, now() as at
    from (select group_id, count(*) as read from newest group by group_id) as r
    left join (
      select group_id, count(*) as exceptions, coalesce(sum(occurrences), 0) as occurrences,
        count(distinct customer_id) as customers, count(distinct order_id) as orders
      from open group by group_id
    ) as c using (group_id)
    left join money as m using (group_id)`.execute(trx),
  );
  const assessedAt = new Date(rows[0]?.at ?? Date.now()).toISOString();
  for (const id of groupIds) {
    impacts.set(id, {
      exceptions: 0,
      occurrences: 0,
      affectedCustomers: 0,
      affectedOrders: 0,
      moneyAtStake: [],
      exact: true,
      assessedAt,
    });
  }
  for (const r of rows) {
    const money = typeof r.money === 'string' ? JSON.parse(r.money) : (r.money ?? []);
    Object.assign(impacts.get(r.group_id)!, {
      exceptions: Number(r.exceptions ?? 0),
      occurrences: Number(r.occurrences ?? 0),
      affectedCustomers: Number(r.customers ?? 0),
      affectedOrders: Number(r.orders ?? 0),
      moneyAtStake: (money as Array<{ currency: string; amount: string }>).map((m) => ({
        currency: m.currency,
        amount: Number(m.amount),
      })),
      exact: Number(r.read) <= cap,
    });
  }
  return impacts;
}
