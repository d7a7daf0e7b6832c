import { type Kysely, sql } from 'kysely';
import { withSystem, withTenant } from '../platform/db/index.ts';
import { isUuid, uuidv7 } from '../platform/uuidv7.ts';
import type { ExceptionsTables, ExceptionsTrx } from './tables.ts';
import { type TenantFailure, tenantStep } from './tenant-steps.ts';

/** A tenant's retention, as exceptions.settings holds it or by default. */
export type Retention = { archiveAfterDays: number; deleteAfterDays: number; updatedAt: string | null };

/**
 * Resolved and closed exceptions are archived 30 days after their last change, and archived
 * records deleted 365 days after they were archived, unless the tenant's settings say otherwise.
 */
export const DEFAULT_RETENTION = { archiveAfterDays: 30, deleteAfterDays: 365 } as const;

/** The tenant's retention (trx is the tenant's). */
export async function readRetention(trx: ExceptionsTrx): Promise<Retention> {
  const row = await trx.selectFrom('exceptions.settings').selectAll().executeTakeFirst();
  if (!row) return { ...DEFAULT_RETENTION, updatedAt: null };
  return {
    archiveAfterDays: row.archive_after_days,
    deleteAfterDays: row.delete_after_days,
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

export type PurgeOptions = {
  /** Archive what was resolved or closed this many days ago, whatever the tenants' settings. */
  olderThanDays?: number | undefined;
  /** Only this tenant (default: every tenant). */
  tenantId?: string | undefined;
  /** Count what would go, change nothing. */
  dryRun?: boolean | undefined;
  /** Exceptions archived, or archive rows deleted, per transaction. (Default: 1,000) */
  batchSize?: number | undefined;
};

/** Told after each batch: rows handled so far of those planned, and the tenant's batch. */
export type PurgeProgress = (
  done: number,
  total: number,
  batch?: { tenantId: string; archived: number; deleted: number },
) => void;

export type TenantPurge = { tenantId: string; slug: string; archived: number; deleted: number };
export type PurgeResult = {
  archived: number;
  deleted: number;
  dryRun: boolean;
  tenants: TenantPurge[];
  /** The tenants whose planning or batch failed; what they did before it is counted above. */
  failed: TenantFailure[];
};

type Db = Kysely<ExceptionsTables>;
type Plan = TenantPurge & { archiveBefore: string; deleteBefore: string };

const CLOSED = sql.join([sql.lit('RESOLVED'), sql.lit('CLOSED')]);

/**
 * What is due in one tenant: the cut-off times (fixed for the run, so rows aging meanwhile wait
 * for the next one) and how many exceptions and archive rows they take.
 */
async function planTenant(
  db: Db,
  tenant: { id: string; slug: string },
  olderThanDays?: number,
): Promise<Plan> {
  return withTenant(db, tenant.id, async (trx) => {
    const retention = await readRetention(trx);
    const archiveDays = olderThanDays ?? retention.archiveAfterDays;
    const { rows } = await sql<{
      archive_before: string;
      delete_before: string;
      archived: number;
      deleted: number;
    }>`
      with cut as (
        select now() - make_interval(days => ${archiveDays}) as archive_before,
          now() - make_interval(days => ${retention.deleteAfterDays}) as delete_before
      )
      select cut.archive_before::text, cut.delete_before::text,
        (select count(*)::int from exceptions.exceptions
          where tenant_id = ${tenant.id} and status in (${CLOSED}) and updated_at < cut.archive_before) as archived,
        (select count(*)::int from exceptions.archive
          where tenant_id = ${tenant.id} and archived_at < cut.delete_before) as deleted
      from cut`.execute(trx);
    const row = rows[0]!;
    return {
      tenantId: tenant.id,
      slug: tenant.slug,
      archiveBefore: row.archive_before,
      deleteBefore: row.delete_before,
      archived: row.archived,
      deleted: row.deleted,
    };
  });
}

/**
 * Archives up to `limit` exceptions of the plan in one transaction: each becomes an archive row
 * holding the exception, its retry attempts and its audit as JSON, then is deleted (attempts and
 * audit go by cascade; alerts keep their group and lose the exception). Rows another process
 * holds are skipped, so two purges never archive one exception twice. Returns how many it took.
 */
async function archiveBatch(db: Db, plan: Plan, limit: number): Promise<number> {
  return withTenant(db, plan.tenantId, async (trx) => {
    const { rows } = await sql<{ id: string }>`
      select id from exceptions.exceptions
      where tenant_id = ${plan.tenantId} and status in (${CLOSED}) and updated_at < ${plan.archiveBefore}::timestamptz
      order by updated_at, id
      limit ${limit}
      for update skip locked`.execute(trx);
    if (rows.length === 0) return 0;
    const ids = rows.map((r) => r.id);
    await sql`
      insert into exceptions.archive (id, tenant_id, transaction_id, record)
      select v.archive_id, e.tenant_id, e.transaction_id, jsonb_build_object(
        'exception', to_jsonb(e) - 'search',
        'retryAttempts', coalesce((select jsonb_agg(to_jsonb(r) order by r.attempt)
          from exceptions.retry_attempts r where r.exception_id = e.id), '[]'::jsonb),
        'audit', coalesce((select jsonb_agg(to_jsonb(a) order by a.at, a.id)
          from exceptions.audit a where a.exception_id = e.id), '[]'::jsonb))
      from unnest(${ids}::uuid[], ${ids.map(() => uuidv7())}::uuid[]) as v(id, archive_id)
      join exceptions.exceptions e on e.id = v.id`.execute(trx);
    await trx.deleteFrom('exceptions.exceptions').where('id', 'in', ids).execute();
    return ids.length;
  });
}

/** Deletes up to `limit` archive rows past the tenant's deleteAfterDays; returns how many. */
async function deleteBatch(db: Db, plan: Plan, limit: number): Promise<number> {
  return withTenant(db, plan.tenantId, async (trx) => {
    const { rows } = await sql<{ n: number }>`
      with doomed as (
        select id from exceptions.archive
        where tenant_id = ${plan.tenantId} and archived_at < ${plan.deleteBefore}::timestamptz
        order by archived_at, id
        limit ${limit}
        for update skip locked
      ), gone as (delete from exceptions.archive a using doomed d where a.id = d.id returning a.id)
      select count(*)::int as n from gone`.execute(trx);
    return rows[0]?.n ?? 0;
  });
}

/** The tenants a purge visits: the one named, or all of them. */
async function tenantsOf(db: Db, tenantId: string | undefined): Promise<Array<{ id: string; slug: string }>> {
  if (tenantId !== undefined && !isUuid(tenantId)) return [];
  return withSystem(db, async (trx) => {
    const { rows } = tenantId
      ? await sql<{
          id: string;
          slug: string;
        }>`select id, slug from identity.tenants where id = ${tenantId}`.execute(trx)
      : await sql<{ id: string; slug: string }>`select id, slug from identity.tenants order by id`.execute(
          trx,
        );
    return rows;
  });
}

/**
 * Retention for every tenant (or one): archives resolved and closed exceptions older than the
 * tenant's archiveAfterDays (or `olderThanDays`), then deletes archive rows older than its
 * deleteAfterDays, `batchSize` rows per transaction. Each tenant's work runs in its own
 * transactions under its row-level security (the tables force it, so even the owner sees one
 * tenant at a time); `withSystem` only lists the tenants. A tenant whose step fails is left in
 * `failed` and the others go on (tenant-steps.ts); the next run tries it again.
 */
export async function purgeExceptions(
  db: Db,
  options: PurgeOptions = {},
  progress?: PurgeProgress,
): Promise<PurgeResult> {
  const batchSize = options.batchSize ?? 1000;
  const failed: TenantFailure[] = [];
  const plans: Plan[] = [];
  for (const tenant of await tenantsOf(db, options.tenantId)) {
    const plan = await tenantStep(failed, tenant.id, () => planTenant(db, tenant, options.olderThanDays));
    if (plan && plan.archived + plan.deleted > 0) plans.push(plan);
  }
  const total = plans.reduce((n, p) => n + p.archived + p.deleted, 0);
  if (options.dryRun) {
    return {
      archived: plans.reduce((n, p) => n + p.archived, 0),
      deleted: plans.reduce((n, p) => n + p.deleted, 0),
      dryRun: true,
      tenants: plans.map(({ tenantId, slug, archived, deleted }) => ({ tenantId, slug, archived, deleted })),
      failed,
    };
  }
  const result: PurgeResult = { archived: 0, deleted: 0, dryRun: false, tenants: [], failed };
  let done = 0;
  const step = (tenantId: string, archived: number, deleted: number) => {
    done += archived + deleted;
    progress?.(Math.min(done, total), total, { tenantId, archived, deleted });
  };
  for (const plan of plans) {
    const tenant: TenantPurge = { tenantId: plan.tenantId, slug: plan.slug, archived: 0, deleted: 0 };
    await tenantStep(failed, plan.tenantId, async () => {
      // Until a batch finds nothing: what is left is gone, or held by another purge (skip locked).
      for (let n = plan.archived > 0 ? await archiveBatch(db, plan, batchSize) : 0; n > 0; ) {
        tenant.archived += n;
        step(plan.tenantId, n, 0);
        n = await archiveBatch(db, plan, batchSize);
      }
      for (let n = plan.deleted > 0 ? await deleteBatch(db, plan, batchSize) : 0; n > 0; ) {
        tenant.deleted += n;
        step(plan.tenantId, 0, n);
        n = await deleteBatch(db, plan, batchSize);
      }
    });
    result.archived += tenant.archived;
    result.deleted += tenant.deleted;
    if (tenant.archived + tenant.deleted > 0) result.tenants.push(tenant);
  }
  return result;
}
