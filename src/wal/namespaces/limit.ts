import type { Transaction } from 'kysely';
import { lockNamed } from '../../platform/db/index.ts';
import { AppError } from '../../platform/http/index.ts';
import type { WalTables } from '../tables.ts';

/**
 * Refuses (409 NAMESPACE_LIMIT_REACHED) a tenant's new namespace when it already has max. Runs in
 * the creating transaction and first takes a transaction-scoped advisory lock on the tenant, so
 * two concurrent creates at the limit are serialized: the second counts the first's namespace
 * (committed when the lock is released) and is refused. Unlimited namespaces would each add
 * MERCATO_WAL_MAX_CONCURRENCY deliveries in flight and circuit-breaker label sets. System
 * namespaces (domain events, every tenant has them) do not count.
 */
export async function checkNamespaceLimit(
  trx: Transaction<WalTables>,
  tenantId: string,
  max: number,
): Promise<void> {
  await lockNamed(trx, `wal.namespaces:${tenantId}`);
  const row = await trx
    .selectFrom('wal.namespaces')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('tenant_id', '=', tenantId)
    .where('system', '=', false)
    .executeTakeFirstOrThrow();
  if (Number(row.count) >= max) {
    throw new AppError(
      'NAMESPACE_LIMIT_REACHED',
      `this tenant already has ${max} namespaces, the most MERCATO_WAL_MAX_NAMESPACES allows; delete one first`,
    );
  }
}
