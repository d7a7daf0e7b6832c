import type { Kysely } from 'kysely';
import { uuidv7 } from 'uuidv7';
import { withTenant } from '../../platform/db/index.ts';
import type { TestApp } from '../../platform/testing/index.ts';
import type { NewMessageRow } from '../backends/postgres/group-commit.ts';
import type { NamespacesTable, WalTables } from '../tables.ts';

export const walDb = (t: TestApp) => t.ctx.db.kysely as Kysely<WalTables>;

type NamespaceColumns = {
  [K in keyof NamespacesTable]?: unknown;
};

/** Inserts a namespace row straight into wal.namespaces (defaults from the migration). */
export async function addNamespace(
  t: TestApp,
  tenantId: string,
  name: string,
  columns: NamespaceColumns = {},
): Promise<void> {
  await withTenant(walDb(t), tenantId, (trx) =>
    trx
      .insertInto('wal.namespaces')
      .values({ tenant_id: tenantId, name, targets: '[]', ...columns } as never)
      .execute(),
  );
}

/** Counts a tenant's messages (optionally in one namespace), bypassing nothing: as the tenant. */
export async function countMessages(t: TestApp, tenantId: string, namespace?: string): Promise<number> {
  return withTenant(walDb(t), tenantId, async (trx) => {
    let query = trx.selectFrom('wal.messages').select((eb) => eb.fn.countAll<number>().as('n'));
    if (namespace !== undefined) query = query.where('namespace', '=', namespace);
    const { n } = await query.executeTakeFirstOrThrow();
    return Number(n);
  });
}

/** A row ready for the group committer. */
export function messageRow(
  tenantId: string,
  namespace: string,
  messageId: string,
  hash = 'hash',
): NewMessageRow {
  const now = new Date();
  return {
    id: uuidv7(),
    tenant_id: tenantId,
    namespace,
    message_id: messageId,
    ordering_key: null,
    payload: JSON.stringify({ messageId }),
    headers: '{}',
    request_hash: hash,
    backend: 'postgres',
    state: 'pending',
    due_at: now,
    max_attempts: 10,
    created_at: now,
  };
}
