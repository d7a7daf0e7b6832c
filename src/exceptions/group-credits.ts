import { sql } from 'kysely';
import type { Pending } from './capture-prepare.ts';
import type { Captured } from './capture-store.ts';
import { type ExceptionsTrx, type Severity, severityRank } from './tables.ts';

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
  const n = new Map(pending.map((p) => [p.input.transactionId, p.n]));
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
