import { type Selectable, sql } from 'kysely';
import { isoTime } from '../platform/db/index.ts';
import { AppError, cursorId, cursorText, encodeCursor, invalidCursor } from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import type { Impact } from './escalation.ts';
import type { AlertKind, AlertsTable, ExceptionsTrx } from './tables.ts';

export type AlertRow = Selectable<AlertsTable>;

/** A fired alert as the API and CriticalExceptionAlert show it. */
export type FiredAlert = {
  id: string;
  ruleId: string;
  ruleName: string;
  kind: AlertKind;
  groupId: string;
  /** The exception that fired it; null once that exception was archived. */
  exceptionId: string | null;
  transactionId: string | null;
  escalationTeam: string;
  impact: Impact;
  /** Matches while it was open, not alerted again. */
  suppressed: number;
  firedAt: string;
  acknowledgedBy: string | null;
  acknowledgedAt: string | null;
  acknowledgeNote: string | null;
};

type FiredRow = AlertRow & {
  rule_name: string;
  kind: AlertKind;
  transaction_id: string | null;
  at_us: string;
};

export function toFired(row: Omit<FiredRow, 'at_us'>): FiredAlert {
  return {
    id: row.id,
    ruleId: row.rule_id,
    ruleName: row.rule_name,
    kind: row.kind,
    groupId: row.group_id,
    exceptionId: row.exception_id,
    transactionId: row.transaction_id,
    escalationTeam: row.escalation_team,
    // Alerts assessed before impacts were capped (no `exact`) were exact.
    impact: { exact: true, ...(typeof row.impact === 'string' ? JSON.parse(row.impact) : row.impact) },
    suppressed: row.suppressed,
    firedAt: isoTime(row.fired_at),
    acknowledgedBy: row.acknowledged_by,
    acknowledgedAt: row.acknowledged_at === null ? null : isoTime(row.acknowledged_at),
    acknowledgeNote: row.acknowledge_note,
  };
}

// fired_at in microseconds since the epoch, exact (a JavaScript Date keeps milliseconds only).
const firedMicros = sql<string>`(extract(epoch from a.fired_at) * 1000000)::bigint::text`;
const firedSelect = (trx: ExceptionsTrx) =>
  trx
    .selectFrom('exceptions.alerts as a')
    .innerJoin('exceptions.alert_rules as r', 'r.id', 'a.rule_id')
    .leftJoin('exceptions.exceptions as e', 'e.id', 'a.exception_id')
    .selectAll('a')
    .select(['r.name as rule_name', 'r.kind', 'e.transaction_id', firedMicros.as('at_us')]);

type PageOptions = { state: 'open' | 'all'; limit: number; cursor: string | undefined };

/**
 * The query of a page of fired alerts, newest first (open ones only unless `state` is all), and one
 * more to tell whether there is a next page. Open ones read alerts_open_tenant (migration 0070).
 */
export function firedPage(trx: ExceptionsTrx, options: PageOptions) {
  let query = firedSelect(trx)
    .orderBy('a.fired_at', 'desc')
    .orderBy('a.id', 'desc')
    .limit(options.limit + 1);
  if (options.state === 'open') query = query.where('a.acknowledged_at', 'is', null);
  if (options.cursor !== undefined) {
    const [micros, id] = cursorText(options.cursor).split('/');
    if (!micros || !/^\d{1,17}$/.test(micros)) throw invalidCursor('not a time');
    const after = sql<Date>`timestamptz 'epoch' + ${micros}::bigint * interval '1 microsecond'`;
    query = query.where((eb) => eb(eb.refTuple('a.fired_at', 'a.id'), '<', eb.tuple(after, cursorId(id))));
  }
  return query;
}

/** Fired alerts, newest first (open ones only unless `state` is all), a page at a time. */
export async function listFired(
  trx: ExceptionsTrx,
  options: PageOptions,
): Promise<{ items: FiredAlert[]; nextCursor: string | null }> {
  const query = firedPage(trx, options);
  const rows = (await query.execute()) as FiredRow[];
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  return {
    items: page.map(toFired),
    nextCursor: rows.length > options.limit && last ? encodeCursor(`${last.at_us}/${last.id}`) : null,
  };
}

const alertNotFound = (id: string) => new AppError('NOT_FOUND', `alert ${id} not found`);

/** One fired alert; 404 when absent. */
export async function getFired(trx: ExceptionsTrx, id: string): Promise<FiredAlert> {
  if (!isUuid(id)) throw alertNotFound(id);
  const row = await firedSelect(trx).where('a.id', '=', id.toLowerCase()).executeTakeFirst();
  if (!row) throw alertNotFound(id);
  return toFired(row as FiredRow);
}

/**
 * Acknowledges an open alert (the next firing of its rule and group makes a new one). Answers
 * the alert and whether this call acknowledged it: acknowledging twice changes nothing.
 */
export async function acknowledgeFired(
  trx: ExceptionsTrx,
  id: string,
  actor: string,
  note: string | null,
): Promise<{ alert: FiredAlert; changed: boolean }> {
  if (!isUuid(id)) throw alertNotFound(id);
  const result = await trx
    .updateTable('exceptions.alerts')
    .set({ acknowledged_by: actor, acknowledged_at: sql<Date>`now()`, acknowledge_note: note })
    .where('id', '=', id.toLowerCase())
    .where('acknowledged_at', 'is', null)
    .executeTakeFirst();
  return { alert: await getFired(trx, id), changed: Number(result.numUpdatedRows) > 0 };
}
