import { sql } from 'kysely';
import { type JsonColumn, jsonObjects, jsonRows } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { AuditEntry } from './audit.ts';
import type { CaptureInput } from './capture.ts';
import { type Classification, classify, loadRules } from './classify.ts';
import { type ViewedRow, viewColumns } from './exception-view.ts';
import { fingerprint, normalizeReason } from './fingerprint.ts';
import { tooMuchToSearch } from './searchable.ts';
import { type ExceptionsTrx, type Severity, severityRank } from './tables.ts';

/** Who captures, in the audit. */
export const CAPTURE_ACTOR = 'system:capture';

/** Statuses a repeat reopens to NEW, as Sentry reopens a regressed issue. */
const CLOSED_STATUSES = ['RESOLVED', 'CLOSED', 'RETRIED_SUCCESS'];

/** A time as PostgreSQL reads it: a string is kept (a dead letter's death carries microseconds). */
const iso = (value: Date | string) => (typeof value === 'string' ? value : value.toISOString());

const clip = (value: string | null | undefined, max: number) =>
  value === null || value === undefined || value === '' ? null : value.slice(0, max);

/** The columns a capture returns: the view's (not the payload it just sent, nor the search vector). */
const COLUMNS = viewColumns('exceptions');

/** One exception to write: the last report of its transaction id in the batch, counted `n` times. */
export type Pending = {
  input: CaptureInput;
  classification: Classification & { rule: string | null };
  fingerprint: string;
  normalized: string;
  n: number;
  firstSeen: string;
  lastSeen: string;
  reports: CaptureInput[];
};

/** The batch's reports, one Pending per transaction id (several reports of one id count each). */
export async function prepare(trx: ExceptionsTrx, inputs: CaptureInput[]): Promise<Map<string, Pending>> {
  const rules = await loadRules(trx);
  const now = new Date().toISOString();
  const byTx = new Map<string, Pending>();
  for (const raw of inputs) {
    const input = {
      ...raw,
      transactionId: raw.transactionId.slice(0, 200),
      reason: raw.reason.slice(0, 4000) || 'no reason given',
    };
    const classification = classify(input, rules, input.preset);
    const normalized = normalizeReason(input.reason);
    const seen = input.seenAt === undefined ? now : iso(input.seenAt);
    const known = byTx.get(input.transactionId);
    const reports = known?.reports ?? [];
    reports.push(input);
    byTx.set(input.transactionId, {
      input,
      classification,
      normalized,
      fingerprint: fingerprint(input.interfaceType, classification.category, normalized),
      n: (known?.n ?? 0) + 1,
      firstSeen: known && known.firstSeen < seen ? known.firstSeen : seen,
      lastSeen: known && known.lastSeen > seen ? known.lastSeen : seen,
      reports,
    });
  }
  return byTx;
}

/** The exceptions' input columns, in the order rowsOf gives their values. */
const INPUT_COLUMNS: JsonColumn[] = [
  ['id', 'uuid'],
  ['transaction_id', 'text'],
  ['external_id', 'text'],
  ['interface_type', 'text'],
  ['event_type', 'text'],
  ['operation', 'text'],
  ['reason', 'text'],
  ['category', 'text'],
  ['severity', 'text'],
  ['customer_id', 'text'],
  ['location_code', 'text'],
  ['order_id', 'text'],
  ['amount', 'bigint'],
  ['currency', 'text'],
  ['retryable', 'boolean'],
  ['correlation_id', 'text'],
  ['causation_id', 'text'],
  ['source_ref', 'jsonb'],
  ['payload', 'jsonb'],
  ['fingerprint', 'text'],
  ['n', 'integer'],
  ['first_seen', 'timestamptz'],
  ['last_seen', 'timestamptz'],
];

/** The groups a batch needs, as write() sends them. */
const GROUP_COLUMNS: JsonColumn[] = [
  ['id', 'uuid'],
  ['fingerprint', 'text'],
  ['interface_type', 'text'],
  ['category', 'text'],
  ['normalized_reason', 'text'],
  ['severity', 'text'],
  ['seen', 'timestamptz'],
];

/** The exceptions' row values, as INPUT_COLUMNS names them. */
function rowsOf(pending: Pending[]): unknown[][] {
  return pending.map(({ input: i, classification: c, fingerprint: fp, n, firstSeen, lastSeen }) => [
    uuidv7(),
    i.transactionId,
    clip(i.externalId, 200),
    i.interfaceType,
    i.eventType.slice(0, 200),
    i.operation.slice(0, 200) || 'unknown',
    i.reason,
    c.category,
    c.severity,
    clip(i.customerId, 200),
    clip(i.locationCode, 200),
    clip(i.orderId, 200),
    i.amount ?? null,
    i.amount === null || i.amount === undefined ? null : (i.currency ?? null),
    c.retryable,
    clip(i.correlationId, 200),
    clip(i.causationId, 200),
    i.sourceRef,
    // A payload whose text the search vector cannot hold would fail the whole statement, every
    // time: it is not kept (a dead letter's detail reads it from the WAL, as one over 64 KB).
    tooMuchToSearch(i.payload) ? null : (i.payload ?? null),
    fp,
    n,
    firstSeen,
    lastSeen,
  ]);
}

export type Captured = ViewedRow & {
  inserted: boolean;
  old_group_id: string | null;
  old_status: string | null;
};

/**
 * Writes the batch in two statements whatever its size: the groups it needs (missing ones
 * made), then the exceptions (new, or repeated: occurrences added, reason and payload updated,
 * a closed one reopened; a repeat moves to its new reason's group). creditGroups counts them.
 * A group the snapshot already shows is left out of the insert: ON CONFLICT's check of an
 * existing key waits for a transaction updating that row (the fold of the groups' credits), and
 * every capture of the tenant queued behind each fold.
 */
export async function write(trx: ExceptionsTrx, tenantId: string, pending: Pending[]): Promise<Captured[]> {
  const groups = new Map<string, Pending>();
  for (const p of pending) if (!groups.has(p.fingerprint)) groups.set(p.fingerprint, p);
  const groupRows = [...groups.values()].map((p) => ({
    id: uuidv7(),
    fingerprint: p.fingerprint,
    interface_type: p.input.interfaceType,
    category: p.classification.category,
    normalized_reason: p.normalized,
    severity: p.classification.severity,
    seen: p.firstSeen,
  }));
  await sql`
    insert into exceptions.groups (id, tenant_id, fingerprint, interface_type, category, normalized_reason,
      severity, exceptions, occurrences, first_seen, last_seen)
    select g.id, ${tenantId}, g.fingerprint, g.interface_type, g.category, g.normalized_reason, g.severity, 0, 0,
      g.seen, g.seen
    from ${jsonObjects(GROUP_COLUMNS, groupRows)} as g
    where not exists (
      select from exceptions.groups x where x.tenant_id = ${tenantId} and x.fingerprint = g.fingerprint)
    order by g.fingerprint
    on conflict (tenant_id, fingerprint) do nothing`.execute(trx);
  const reopen = sql`exceptions.status in (${sql.join(CLOSED_STATUSES)})`;
  const keep = (column: string) =>
    sql`${sql.ref(column)} = case when ${reopen} then null else ${sql.ref(`exceptions.${column}`)} end`;
  const { rows } = await sql<Captured>`
    with input as (
      select * from ${jsonRows(INPUT_COLUMNS, rowsOf(pending))} as x
    ),
    old as (
      select e.transaction_id, e.group_id, e.status from exceptions.exceptions e
      where e.tenant_id = ${tenantId} and e.transaction_id in (select transaction_id from input)
    ),
    up as (
      insert into exceptions.exceptions as exceptions (id, tenant_id, transaction_id, external_id, interface_type,
        event_type, operation, reason, category, severity, customer_id, location_code, order_id, amount, currency,
        retryable, correlation_id, causation_id, source_ref, payload, group_id, occurrences, first_seen, last_seen)
      select i.id, ${tenantId}, i.transaction_id, i.external_id, i.interface_type, i.event_type, i.operation,
        i.reason, i.category, i.severity, i.customer_id, i.location_code, i.order_id, i.amount, i.currency,
        i.retryable, i.correlation_id, i.causation_id, i.source_ref, i.payload, g.id, i.n, i.first_seen, i.last_seen
      from input i join exceptions.groups g on g.tenant_id = ${tenantId} and g.fingerprint = i.fingerprint
      order by i.transaction_id
      on conflict (tenant_id, transaction_id) do update set
        external_id = coalesce(excluded.external_id, exceptions.external_id),
        interface_type = excluded.interface_type,
        event_type = excluded.event_type,
        operation = excluded.operation,
        reason = excluded.reason,
        category = excluded.category,
        severity = excluded.severity,
        customer_id = coalesce(excluded.customer_id, exceptions.customer_id),
        location_code = coalesce(excluded.location_code, exceptions.location_code),
        order_id = coalesce(excluded.order_id, exceptions.order_id),
        amount = case when excluded.amount is null then exceptions.amount else excluded.amount end,
        currency = case when excluded.amount is null then exceptions.currency else excluded.currency end,
        retryable = excluded.retryable,
        correlation_id = coalesce(excluded.correlation_id, exceptions.correlation_id),
        causation_id = coalesce(excluded.causation_id, exceptions.causation_id),
        source_ref = excluded.source_ref,
        payload = excluded.payload,
        group_id = excluded.group_id,
        occurrences = exceptions.occurrences + excluded.occurrences,
        first_seen = least(exceptions.first_seen, excluded.first_seen),
        last_seen = greatest(exceptions.last_seen, excluded.last_seen),
        status = case when ${reopen} then 'NEW' else exceptions.status end,
        ${keep('acknowledged_by')}, ${keep('acknowledged_at')}, ${keep('acknowledge_note')},
        ${keep('resolved_by')}, ${keep('resolved_at')}, ${keep('resolution')}, ${keep('resolve_note')},
        updated_at = now()
      returning ${COLUMNS}, (exceptions.xmax = 0) as inserted
    )
    select up.*, old.group_id as old_group_id, old.status as old_status
    from up left join old on old.transaction_id = up.transaction_id`.execute(trx);
  return rows;
}

type GroupCredit = {
  id: string;
  exceptions: number;
  occurrences: number;
  severity: Severity | null;
  first: string | null;
  last: string | null;
};

/**
 * Credits the groups the batch landed in with its occurrences, exceptions, severity and times: one
 * row per group appended to exceptions.group_credits (migration 0036), which takes no lock, so
 * concurrent captures of a tenant never queue on its groups' rows. The fold job, and every read
 * of groups first, add the credits to the groups (foldGroupCredits).
 */
export async function creditGroups(
  trx: ExceptionsTrx,
  tenantId: string,
  rows: Captured[],
  pending: Pending[],
) {
  const n = new Map(pending.map((p) => [p.input.transactionId.slice(0, 200), p.n]));
  const credit = new Map<string, GroupCredit>();
  const of = (id: string): GroupCredit => {
    const known = credit.get(id);
    if (known) return known;
    const fresh: GroupCredit = { id, exceptions: 0, occurrences: 0, severity: null, first: null, last: null };
    credit.set(id, fresh);
    return fresh;
  };
  for (const row of rows) {
    const c = of(row.group_id);
    const moved = !row.inserted && row.old_group_id !== null && row.old_group_id !== row.group_id;
    c.occurrences += n.get(row.transaction_id) ?? 1;
    if (row.inserted || moved) c.exceptions += 1;
    if (moved) of(row.old_group_id!).exceptions -= 1;
    // The group keeps the highest severity it has seen.
    if (c.severity === null || severityRank(row.severity) > severityRank(c.severity))
      c.severity = row.severity;
    const seen = new Date(row.last_seen).toISOString();
    if (c.last === null || seen > c.last) c.last = seen;
    const first = new Date(row.first_seen).toISOString();
    if (c.first === null || first < c.first) c.first = first;
  }
  if (credit.size === 0) return;
  await sql`
    with credits as (
      insert into exceptions.group_credits (tenant_id, group_id, exceptions, occurrences, severity, first_seen, last_seen)
      select ${tenantId}, d.id, d.exceptions, d.occurrences, d.severity, d.first, d.last
      from jsonb_to_recordset(${JSON.stringify([...credit.values()])}::jsonb) as d(id uuid, exceptions integer,
        occurrences integer, severity text, first timestamptz, last timestamptz)
    )
    insert into exceptions.rollup_dirty (tenant_id) values (${tenantId})`.execute(trx);
}

/**
 * Adds the tenant's pending group credits to its groups, in `trx` (the tenant's): a read of groups
 * does it first, so it shows every capture committed before it. Under a savepoint: should it
 * fail (a deadlock with another fold), the read goes on and the credits wait for the next fold.
 */
export async function foldGroupCredits(trx: ExceptionsTrx): Promise<void> {
  await sql`savepoint fold_group_credits`.execute(trx);
  try {
    await sql`select exceptions.fold_group_credits()`.execute(trx);
    await sql`release savepoint fold_group_credits`.execute(trx);
  } catch {
    await sql`rollback to savepoint fold_group_credits`.execute(trx);
  }
}

/** The audit action of one report: the first of a new exception is captured, of a closed one reopened. */
export function auditEntries(tenantId: string, rows: Captured[], byTx: Map<string, Pending>): AuditEntry[] {
  return rows.flatMap((row) => {
    const pending = byTx.get(row.transaction_id);
    const reopened = !row.inserted && row.old_status !== null && CLOSED_STATUSES.includes(row.old_status);
    const first = row.inserted ? 'captured' : reopened ? 'reopened' : 'repeated';
    const rule = pending?.classification.rule;
    return (pending?.reports ?? []).map((input, i) => ({
      tenantId,
      exceptionId: row.id,
      action: i === 0 ? first : 'repeated',
      actor: CAPTURE_ACTOR,
      details: {
        eventType: input.eventType,
        category: row.category,
        severity: row.severity,
        ...(rule ? { rule } : {}),
        ...(reopened && i === 0 ? { from: row.old_status } : {}),
      },
    }));
  });
}
