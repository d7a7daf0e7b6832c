import { type Kysely, sql } from 'kysely';
import { uuidv7 } from 'uuidv7';
import type { Namespace } from '../namespaces/namespace.ts';
import type { WalTables } from '../tables.ts';
import type { DeliverFn } from './index.ts';

type NamespaceRow = {
  tenant_id: string;
  name: string;
  retry_strategy: Namespace['retry']['strategy'];
  retry_base_delay_ms: number;
  retry_max_delay_ms: number;
  max_attempts: number;
  retry_jitter: number;
  targets: Namespace['targets'] | string;
  consumer_concurrency: number;
  enabled: boolean;
};

/** Reads a namespace with SQL (the tests' stand-in for the namespace cache). */
export async function loadNamespaceWithSql(
  db: Kysely<WalTables>,
  tenantId: string,
  name: string,
): Promise<Namespace | undefined> {
  const { rows } = await sql<NamespaceRow>`
    select * from wal.namespaces where tenant_id = ${tenantId} and name = ${name}`.execute(db);
  const row = rows[0];
  if (!row) return undefined;
  return {
    tenantId: row.tenant_id,
    name: row.name,
    backend: 'postgres',
    fallbackBackend: null,
    drainingBackends: [],
    payloadSchema: null,
    retry: {
      strategy: row.retry_strategy,
      baseDelayMs: row.retry_base_delay_ms,
      maxDelayMs: row.retry_max_delay_ms,
      maxAttempts: row.max_attempts,
      jitter: row.retry_jitter,
    },
    targets: typeof row.targets === 'string' ? JSON.parse(row.targets) : row.targets,
    rateLimitPerSecond: null,
    maxDelayMs: 604_800_000,
    maxPayloadBytes: 262_144,
    deliveredRetentionSeconds: 604_800,
    deadRetentionSeconds: 2_592_000,
    allowedHosts: [],
    consumerConcurrency: row.consumer_concurrency,
    enabled: row.enabled,
    system: false,
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
  };
}

/** Delivers internal targets only; every other kind is a retryable failure. */
export const deliverInternalOnly: DeliverFn = async (_namespace, target, delivery, internal) =>
  target.type === 'internal'
    ? internal(target.handler, delivery)
    : { outcome: 'retry', error: `${target.type} targets are not wired in this test` };

/** A namespace whose targets are the named internal handlers; fast fixed retries without jitter. */
export async function insertNamespace(
  db: Kysely<WalTables>,
  tenantId: string,
  name: string,
  handlers: string[],
  options: { concurrency?: number; maxAttempts?: number; baseDelayMs?: number } = {},
): Promise<void> {
  const targets = handlers.map((handler) => ({ name: handler, type: 'internal', handler, enabled: true }));
  await sql`
    insert into wal.namespaces (tenant_id, name, targets, retry_strategy, retry_base_delay_ms, retry_max_delay_ms,
      retry_jitter, max_attempts, consumer_concurrency)
    values (${tenantId}, ${name}, ${JSON.stringify(targets)}::jsonb, 'fixed', ${options.baseDelayMs ?? 10},
      ${Math.max(options.baseDelayMs ?? 10, 50)}, 0, ${options.maxAttempts ?? 10}, ${options.concurrency ?? 8})`.execute(
    db,
  );
}

/** Inserts a message as the write API would; returns its internal id. */
export async function insertMessage(
  db: Kysely<WalTables>,
  tenantId: string,
  namespace: string,
  payload: unknown,
  options: { key?: string; dueInMs?: number; maxAttempts?: number; messageId?: string } = {},
): Promise<string> {
  const id = uuidv7();
  const due = options.dueInMs ?? 0;
  await sql`
    insert into wal.messages (id, tenant_id, namespace, message_id, ordering_key, payload, request_hash, backend,
      state, due_at, max_attempts)
    values (${id}, ${tenantId}, ${namespace}, ${options.messageId ?? id}, ${options.key ?? null},
      ${JSON.stringify(payload)}::jsonb, 'test', 'postgres', ${due > 0 ? 'scheduled' : 'pending'},
      now() + ${due} * interval '1 millisecond', ${options.maxAttempts ?? 10})`.execute(db);
  return id;
}

/**
 * Many messages in one statement, due already and in this order (ids and due times ascending),
 * each with payload `{ key, n }`; returns their ids.
 */
export async function insertMessages(
  db: Kysely<WalTables>,
  tenantId: string,
  namespace: string,
  messages: { key?: string; n: number }[],
  maxAttempts = 10,
): Promise<string[]> {
  const ids = messages.map(() => uuidv7());
  await sql`
    insert into wal.messages (id, tenant_id, namespace, message_id, ordering_key, payload, request_hash, backend,
      state, due_at, max_attempts)
    select f.id, ${tenantId}, ${namespace}, f.id::text, f.key, jsonb_build_object('key', f.key, 'n', f.n), 'test',
      'postgres', 'pending', now() - interval '1 minute' + f.i * interval '1 millisecond', ${maxAttempts}::int
    from unnest(${ids}::uuid[], ${messages.map((m) => m.key ?? null)}::text[], ${messages.map((m) => m.n)}::int[])
      with ordinality as f(id, key, n, i)`.execute(db);
  return ids;
}

/** Polls until check returns a value other than undefined; fails after `tries` × 25 ms. */
export async function eventually<T>(check: () => Promise<T | undefined>, tries = 400): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('condition not reached');
}

/** One message's state row. */
export async function messageRow(db: Kysely<WalTables>, id: string) {
  const { rows } = await sql<{
    state: string;
    attempts: number;
    last_error: string | null;
    lease_token: string | null;
    targets_done: string[];
  }>`select state, attempts, last_error, lease_token, targets_done from wal.messages where id = ${id}`.execute(
    db,
  );
  return rows[0];
}
