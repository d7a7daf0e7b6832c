import { sql } from 'kysely';
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
  assessedAt: string;
};

/** Statuses still needing someone: a succeeded retry, a resolution or a closure ends an exception's impact. */
export const OPEN_STATUSES = ['NEW', 'ACKNOWLEDGED', 'RETRY_IN_PROGRESS', 'RETRIED_FAILED'] as const;

/** The impact of each group's open exceptions, two aggregate queries for all the groups. */
export async function assessImpact(trx: ExceptionsTrx, groupIds: string[]): Promise<Map<string, Impact>> {
  const impacts = new Map<string, Impact>();
  if (groupIds.length === 0) return impacts;
  const open = sql.join(OPEN_STATUSES.map((s) => sql.lit(s)));
  const { rows: counts } = await sql<{
    group_id: string;
    exceptions: number | string;
    occurrences: number | string;
    customers: number | string;
    orders: number | string;
    at: Date | string;
  }>`
    select group_id, count(*) as exceptions, coalesce(sum(occurrences), 0) as occurrences,
      count(distinct customer_id) as customers, count(distinct order_id) as orders, now() as at
    from exceptions.exceptions
    where group_id = any(${groupIds}::uuid[]) and status in (${open})
    group by group_id`.execute(trx);
  const { rows: money } = await sql<{ group_id: string; currency: string; amount: number | string }>`
    select group_id, currency, sum(amount) as amount
    from exceptions.exceptions
    where group_id = any(${groupIds}::uuid[]) and status in (${open})
      and amount is not null and currency is not null
    group by group_id, currency
    order by sum(amount) desc, currency`.execute(trx);
  const assessedAt = new Date(counts[0]?.at ?? Date.now()).toISOString();
  for (const id of groupIds) {
    impacts.set(id, {
      exceptions: 0,
      occurrences: 0,
      affectedCustomers: 0,
      affectedOrders: 0,
      moneyAtStake: [],
      assessedAt,
    });
  }
  for (const c of counts) {
    Object.assign(impacts.get(c.group_id)!, {
      exceptions: Number(c.exceptions),
      occurrences: Number(c.occurrences),
      affectedCustomers: Number(c.customers),
      affectedOrders: Number(c.orders),
    });
  }
  for (const m of money) {
    impacts.get(m.group_id)!.moneyAtStake.push({ currency: m.currency, amount: Number(m.amount) });
  }
  return impacts;
}
