import { sql } from 'kysely';
import { type JsonColumn, jsonRows } from '../platform/db/index.ts';
import { type AlertRuleRow, matchesFilters } from './alert-store.ts';
import type { ViewedRow } from './exception-view.ts';
import { type ExceptionsTrx, SEVERITIES, type Severity, severityRank } from './tables.ts';

/** The longest a process trusts a group to stay past a rate rule's threshold without counting again. */
export const RATE_MEMO_MS = 60_000;
/** The (rule, group) pairs a process remembers; past it, the expired ones go, then all. */
const RATE_MEMO_ENTRIES = 10_000;

/** One (rule, group) a batch asks rateCountQuery about. */
export type RatePair = {
  rule: number;
  groupId: string;
  windowMinutes: number;
  threshold: number;
  interfaceType: string | null;
  category: string | null;
  minRank: number | null;
};

/** Each rate rule (by its index in `rules`) with the groups of the batch's rows matching it. */
export function ratePairs(rules: AlertRuleRow[], rows: ViewedRow[]): RatePair[] {
  const pairs: RatePair[] = [];
  rules.forEach((rule, i) => {
    if (rule.kind !== 'rate') return;
    const groups = new Set(rows.filter((r) => matchesFilters(rule, r)).map((r) => r.group_id));
    for (const groupId of groups) {
      pairs.push({
        rule: i,
        groupId,
        windowMinutes: rule.window_minutes ?? 0,
        threshold: rule.threshold ?? 0,
        interfaceType: rule.match_interface_type,
        category: rule.match_category,
        minRank: rule.min_severity === null ? null : severityRank(rule.min_severity as Severity),
      });
    }
  });
  return pairs;
}

const PAIR_COLUMNS: JsonColumn[] = [
  ['rule', 'integer'],
  ['group_id', 'uuid'],
  ['window_minutes', 'integer'],
  ['threshold', 'integer'],
  ['interface_type', 'text'],
  ['category', 'text'],
  ['min_rank', 'integer'],
];

/**
 * Per (rule, group): `seen`, the group's exceptions matching the rule seen within its window,
 * counted up to threshold + 1 only; `over`, whether that passes the threshold; and `stays_ms`,
 * how long it must stay past it (until the (threshold + 1)th newest leaves the window: last seen
 * only moves forward). Each pair reads exceptions_group_seen (migration 0045) from the group's
 * newest row back, index only, at most threshold + 1 matching entries: the cost does not grow
 * with the tenant's other exceptions, nor the group's older ones. The severity's rank is its
 * position in SEVERITIES (tables.ts), less one.
 */
export function rateCountQuery(tenantId: string, pairs: RatePair[]) {
  const values = pairs.map((p) => [
    p.rule,
    p.groupId,
    p.windowMinutes,
    p.threshold,
    p.interfaceType,
    p.category,
    p.minRank,
  ]);
  const ranks = sql.raw(`array[${SEVERITIES.map((s) => `'${s}'`).join(', ')}]`);
  // The pairs are typed columns of their own (materialized) and the window's start computed
  // there: the lateral's conditions then compare the row's columns with plain values, which
  // PostgreSQL may use as index conditions under row-level security (a jsonb operator or
  // make_interval in them is not leakproof, and made a scan of the whole tenant).
  return sql<{ rule: number; group_id: string; seen: number | string; over: boolean; stays_ms: number }>`
    with p as materialized (
      select x.rule, x.group_id, x.threshold, x.interface_type, x.category, x.min_rank,
        now() - make_interval(mins => x.window_minutes) as since
      from ${jsonRows(PAIR_COLUMNS, values)} as x
    )
    select p.rule, p.group_id, c.seen, c.seen > p.threshold as over,
      coalesce(greatest(0, floor(extract(epoch from c.oldest - p.since) * 1000)), 0)::float8 as stays_ms
    from p cross join lateral (
      select count(*) as seen, min(matching.last_seen) as oldest from (
        select e.last_seen from exceptions.exceptions e
        where e.group_id = p.group_id and e.tenant_id = ${tenantId} and e.last_seen > p.since
          and (p.interface_type is null or e.interface_type = p.interface_type)
          and (p.category is null or e.category = p.category)
          and (p.min_rank is null or array_position(${ranks}, e.severity) - 1 >= p.min_rank)
        -- Newest first, the group index's order: a seq scan would have to sort every row.
        order by e.last_seen desc
        limit p.threshold + 1
      ) as matching
    ) as c`;
}

/**
 * Rate rules for capture: `over` answers the keys `<rule index>/<group id>` of the batch's
 * (rule, group) pairs past their threshold, counting them in one statement (rateCountQuery).
 * A pair found past it stays so until its (threshold + 1)th newest exception leaves the window,
 * since captures only add exceptions and move last seen forward: the process remembers that, up
 * to RATE_MEMO_MS, and does not count the pair again meanwhile (a hot group fires and suppresses
 * without a count per batch). A rule changed since (its updated_at) is counted afresh.
 */
export function createRateCounter() {
  const pastUntil = new Map<string, number>();
  const keyOf = (tenantId: string, rule: AlertRuleRow, groupId: string) =>
    `${tenantId}/${rule.id}/${new Date(rule.updated_at).getTime()}/${groupId}`;
  const remember = (key: string, until: number) => {
    if (pastUntil.size >= RATE_MEMO_ENTRIES) {
      const now = Date.now();
      for (const [k, u] of pastUntil) if (u <= now) pastUntil.delete(k);
      if (pastUntil.size >= RATE_MEMO_ENTRIES) pastUntil.clear();
    }
    pastUntil.set(key, until);
  };
  return {
    async over(
      trx: ExceptionsTrx,
      tenantId: string,
      rules: AlertRuleRow[],
      rows: ViewedRow[],
    ): Promise<Set<string>> {
      const over = new Set<string>();
      const now = Date.now();
      const pairs = ratePairs(rules, rows).filter((p) => {
        if ((pastUntil.get(keyOf(tenantId, rules[p.rule]!, p.groupId)) ?? 0) <= now) return true;
        over.add(`${p.rule}/${p.groupId}`);
        return false;
      });
      if (pairs.length === 0) return over;
      const { rows: counts } = await rateCountQuery(tenantId, pairs).execute(trx);
      for (const c of counts) {
        if (!c.over) continue;
        over.add(`${c.rule}/${c.group_id}`);
        const stays = Math.min(Number(c.stays_ms), RATE_MEMO_MS);
        if (stays > 0) remember(keyOf(tenantId, rules[c.rule]!, c.group_id), now + stays);
      }
      return over;
    },
  };
}
