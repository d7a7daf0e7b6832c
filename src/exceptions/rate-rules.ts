import { type RawBuilder, sql } from 'kysely';
import { type JsonColumn, jsonRows } from '../platform/db/index.ts';
import { type AlertRuleRow, matchesFilters } from './alert-rule-store.ts';
import type { ViewedRow } from './exception-view.ts';
import { inGroupOrder } from './group-scan.ts';
import { type ExceptionsTrx, SEVERITIES, type Severity, severityRank } from './tables.ts';

/** The longest a process trusts what it counted of a (rule, group) without counting it in full again. */
export const RATE_MEMO_MS = 60_000;
/**
 * How far back from a count's time a later batch looks for exceptions seen since: an exception
 * committed after the count but seen (its WAL message taken) up to this long before it still
 * counts. One seen earlier than that is only counted by the next full count (RATE_MEMO_MS).
 */
export const RATE_SINCE_SLACK_MS = 5 * 60_000;
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
  /** A full count of the pair not past the threshold, and when (the database's time): see rateCountQuery. */
  counted?: { seen: number; at: string } | undefined;
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
  ['base', 'integer'],
  ['counted_at', 'timestamptz'],
];

/**
 * Per (rule, group): `counted`, whether it was counted in full; then `seen`, the group's
 * exceptions matching the rule seen within its window, counted up to threshold + 1 only; `over`,
 * whether that passes the threshold; and `stays_ms`, how long it must stay past it (until the
 * (threshold + 1)th newest leaves the window: last seen only moves forward). Each count reads
 * exceptions_group_seen (migration 0045) from the group's newest row back, index only, at most
 * threshold + 1 matching entries: the cost does not grow with the tenant's other exceptions, nor
 * the group's older ones. The severity's rank is its position in SEVERITIES (tables.ts), less one.
 *
 * A pair with an earlier full count (`counted`: `seen` below the threshold at `at`) is first
 * counted from its newest row back to `at` less RATE_SINCE_SLACK_MS only: its window can hold no
 * more than `seen` plus those (the older ones were counted, and a repeat moves last seen forward),
 * so while that sum stays within the threshold it is not past it and is not counted in full
 * (`counted` false). A rule with a high threshold over a group nearly as large then reads the
 * exceptions seen since its last count, not the whole window, on each batch.
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
    p.counted?.seen ?? null,
    p.counted?.at ?? null,
  ]);
  const ranks = sql.raw(`array[${SEVERITIES.map((s) => `'${s}'`).join(', ')}]`);
  const matching = (from: RawBuilder<unknown>) => sql`
    select e.last_seen from exceptions.exceptions e
    where e.group_id = p.group_id and e.tenant_id = ${tenantId} and e.last_seen > ${from}
      and (p.interface_type is null or e.interface_type = p.interface_type)
      and (p.category is null or e.category = p.category)
      and (p.min_rank is null or array_position(${ranks}, e.severity) - 1 >= p.min_rank)
    -- Newest first, the group index's order: a seq scan would have to sort every row.
    order by e.last_seen desc`;
  // The pairs are typed columns of their own (materialized) and the window's start computed
  // there: the lateral's conditions then compare the row's columns with plain values, which
  // PostgreSQL may use as index conditions under row-level security (a jsonb operator or
  // make_interval in them is not leakproof, and made a scan of the whole tenant). A lateral's
  // condition on the pair alone (the fresh count for a counted pair, the full count for the
  // others) is a one-time filter: the other lateral reads nothing.
  return sql<{
    rule: number;
    group_id: string;
    counted: boolean;
    seen: number | string;
    over: boolean;
    stays_ms: number;
    at: Date | string;
  }>`
    with p as materialized (
      select x.rule, x.group_id, x.threshold, x.interface_type, x.category, x.min_rank, x.base,
        now() - make_interval(mins => x.window_minutes) as since,
        greatest(now() - make_interval(mins => x.window_minutes),
          x.counted_at - make_interval(secs => ${RATE_SINCE_SLACK_MS / 1000})) as fresh_since
      from ${jsonRows(PAIR_COLUMNS, values)} as x
    )
    select p.rule, p.group_id, g.full as counted, c.seen, g.full and c.seen > p.threshold as over,
      coalesce(greatest(0, floor(extract(epoch from c.oldest - p.since) * 1000)), 0)::float8 as stays_ms,
      now() as at
    from p cross join lateral (
      select count(*) as fresh from (
        ${matching(sql`p.fresh_since`)}
        limit greatest(0, p.threshold - p.base + 1)
      ) as fresh
      where p.base is not null
    ) as f cross join lateral (
      select p.base is null or p.base + f.fresh > p.threshold as full
    ) as g cross join lateral (
      select count(*) as seen, min(matching.last_seen) as oldest from (
        ${matching(sql`p.since`)}
        limit p.threshold + 1
      ) as matching
      where p.base is null or p.base + f.fresh > p.threshold
    ) as c`;
}

/** What a process remembers of a (rule, group): past the threshold, or a full count below it. */
type Memo = { until: number; counted?: { seen: number; at: string } };

/**
 * Rate rules for capture: `over` answers the keys `<rule index>/<group id>` of the batch's
 * (rule, group) pairs past their threshold, counting them in one statement (rateCountQuery).
 * A pair found past it stays so until its (threshold + 1)th newest exception leaves the window,
 * since captures only add exceptions and move last seen forward: the process remembers that, up
 * to RATE_MEMO_MS, and does not count the pair again meanwhile (a hot group fires and suppresses
 * without a count per batch). A pair found below it is remembered with its count, up to
 * RATE_MEMO_MS: later batches count only what was seen since (rateCountQuery), and count in full
 * again only when that may tip it. A rule changed since (its updated_at) is counted afresh.
 */
export function createRateCounter() {
  const memos = new Map<string, Memo>();
  const keyOf = (tenantId: string, rule: AlertRuleRow, groupId: string) =>
    `${tenantId}/${rule.id}/${new Date(rule.updated_at).getTime()}/${groupId}`;
  const remember = (key: string, memo: Memo) => {
    if (memos.size >= RATE_MEMO_ENTRIES) {
      const now = Date.now();
      for (const [k, m] of memos) if (m.until <= now) memos.delete(k);
      if (memos.size >= RATE_MEMO_ENTRIES) memos.clear();
    }
    memos.set(key, memo);
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
        const memo = memos.get(keyOf(tenantId, rules[p.rule]!, p.groupId));
        if (memo === undefined || memo.until <= now) return true;
        if (memo.counted) {
          p.counted = memo.counted;
          return true;
        }
        over.add(`${p.rule}/${p.groupId}`);
        return false;
      });
      if (pairs.length === 0) return over;
      const { rows: counts } = await inGroupOrder(trx, () => rateCountQuery(tenantId, pairs).execute(trx));
      for (const c of counts) {
        if (!c.counted) continue;
        const key = keyOf(tenantId, rules[c.rule]!, c.group_id);
        if (!c.over) {
          const at = new Date(c.at).toISOString();
          remember(key, { until: now + RATE_MEMO_MS, counted: { seen: Number(c.seen), at } });
          continue;
        }
        over.add(`${c.rule}/${c.group_id}`);
        const stays = Math.min(Number(c.stays_ms), RATE_MEMO_MS);
        if (stays > 0) remember(key, { until: now + stays });
        else memos.delete(key);
      }
      return over;
    },
  };
}
