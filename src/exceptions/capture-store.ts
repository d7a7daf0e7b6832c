import { sql } from 'kysely';
import { type JsonColumn, jsonObjects, jsonRows } from '../platform/db/index.ts';
import { cutText } from '../platform/text.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { Pending } from './capture-prepare.ts';
import { type ViewedRow, viewColumns } from './exception-view.ts';
import { tooMuchToSearch } from './searchable.ts';
import type { ExceptionsTrx } from './tables.ts';

/** Statuses a repeat reopens to NEW, as Sentry reopens a regressed issue. */
export const CLOSED_STATUSES = ['RESOLVED', 'CLOSED', 'RETRIED_SUCCESS'];

const clip = (value: string | null | undefined, max: number) =>
  value === null || value === undefined || value === '' ? null : cutText(value, max);

/** The columns a capture returns: the view's (not the payload it just sent, nor the search vector). */
const COLUMNS = viewColumns('exceptions');

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
    cutText(i.eventType, 200),
    cutText(i.operation, 200) || 'unknown',
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
 * Writes the batch in three statements whatever its size: a lock per transaction id, the groups it
 * needs (missing ones made), then the exceptions (new, or repeated: occurrences added, reason and payload updated,
 * a closed one reopened; a repeat moves to its new reason's group). creditGroups counts them.
 * A group the snapshot already shows is left out of the insert: ON CONFLICT's check of an
 * existing key waits for a transaction updating that row (the fold of the groups' credits), and
 * every capture of the tenant queued behind each fold.
 */
export async function write(trx: ExceptionsTrx, tenantId: string, pending: Pending[]): Promise<Captured[]> {
  // Reports of one transaction id queue here, before any other lock of the capture and in key order
  // (no deadlock), until the other's commit: `old` below, read at the upsert's start, is then the
  // row the upsert changes. Two at once each read the exception's former group, and both credited
  // its move (the new group counted it twice).
  await sql`select pg_advisory_xact_lock(k) from (
      select distinct hashtextextended(${`exceptions.capture:${tenantId}:`} || t, 0) as k
      from unnest(${pending.map((p) => p.input.transactionId)}::text[]) as t) l
    order by k`.execute(trx);
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
