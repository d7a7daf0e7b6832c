import { type Command, InvalidArgumentError } from 'commander';
import type { Kysely } from 'kysely';
import { Value } from 'typebox/value';
import { findTenantBySlug } from '../identity/tenants/index.ts';
import { withTenant } from '../platform/db/index.ts';
import type { AppContext, Config } from '../platform/index.ts';
import {
  createStreamBackends,
  type StreamBackendName,
  type StreamMessage,
} from '../wal/backends/stream/index.ts';
import { listDeadLetters } from '../wal/dlq/index.ts';
import { backendsHolding, createNamespaceCache } from '../wal/namespaces/index.ts';
import type { Namespace } from '../wal/namespaces/namespace.ts';
import type { WalTables } from '../wal/tables.ts';
import { MESSAGE_ID, MESSAGE_KEY, writeMessages } from '../wal/write/index.ts';
import { CliError, withDatabase } from './database-command.ts';

type Opts = { tenant: string };

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** A whole number from min to max, for commander: a flag given anything else is refused, naming it. */
function wholeNumber(min: number, max: number) {
  return (text: string): number => {
    const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max)
      throw new InvalidArgumentError(`a whole number from ${min} to ${max} is expected.`);
    return value;
  };
}

/** --key and --message-id checked against the write routes' own schemas; undefined when they are fine. */
function messageFlagProblem(opts: { key?: string; messageId?: string }): string | undefined {
  if (opts.key !== undefined && !Value.Check(MESSAGE_KEY, opts.key))
    return '--key must be 1 to 200 characters';
  if (opts.messageId !== undefined && !Value.Check(MESSAGE_ID, opts.messageId))
    return '--message-id must be 1 to 200 visible ASCII characters (no spaces)';
  return undefined;
}

/** One message per line, as JSON (the same shape whichever backend holds it). */
function printMessage(message: {
  messageId: string;
  key: string | null;
  state: string;
  backend: string;
  createdAt: Date;
  payload: unknown;
}): void {
  console.log(JSON.stringify(message));
}

/** The id of the namespace's newest row in PostgreSQL: tail prints what comes after it. */
async function newestId(db: Kysely<WalTables>, tenantId: string, namespace: string): Promise<string> {
  const newest = await withTenant(db, tenantId, (trx) =>
    trx
      .selectFrom('wal.messages')
      .select('id')
      .where('namespace', '=', namespace)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst(),
  );
  return newest?.id ?? NIL_UUID;
}

/**
 * Follows the namespace on each stream backend that may hold its messages (its own, its fallback,
 * those it is draining); each must be configured here.
 */
async function followStreams(ctx: AppContext, namespace: Namespace) {
  const streams = createStreamBackends(ctx);
  const named = backendsHolding(namespace).filter((name): name is StreamBackendName => name !== 'postgres');
  for (const name of named) {
    if (!streams.has(name)) {
      throw new CliError(
        `namespace "${namespace.name}" uses ${name}, which this configuration does not reach (set ${name === 'redis-streams' ? 'REDIS_URL' : 'NATS_URL'})`,
      );
    }
  }
  const followers: Array<{ stop(): Promise<void> }> = [];
  for (const name of named) {
    const print = (m: StreamMessage) =>
      printMessage({
        messageId: m.messageId,
        key: m.key,
        state: 'pending',
        backend: name,
        createdAt: new Date(m.createdAt),
        payload: JSON.parse(m.payload),
      });
    try {
      followers.push(await streams.get(name)!.follow(namespace.tenantId, namespace.name, print));
    } catch (error) {
      // The followers already started hold connections of their own: stop them, or the command hangs.
      await Promise.all(followers.map((f) => f.stop()));
      throw new CliError(
        `${name} cannot be reached: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }
  return followers;
}

/** Resolves --tenant and --namespace, or says plainly which one does not exist. */
async function scope(config: Config, opts: Opts, namespaceName: string) {
  return withDatabase(config, async (ctx, identity) => {
    const tenant = await findTenantBySlug(identity.deps.db, opts.tenant);
    if (!tenant) throw new CliError(`no tenant with slug "${opts.tenant}"`);
    const db = ctx.db.kysely as Kysely<WalTables>;
    const namespace = await createNamespaceCache(ctx, db).get(tenant.id, namespaceName);
    if (!namespace) throw new CliError(`tenant "${opts.tenant}" has no WAL namespace "${namespaceName}"`);
    return { tenantId: tenant.id, namespace };
  });
}

/** `mercato wal write|tail|dlq`: the WAL from the command line, with the server's configuration. */
export function registerWalCommands(program: Command, config: () => Config): void {
  const wal = program.command('wal').description('write to, follow and inspect WAL namespaces');

  wal
    .command('write')
    .description('write one message to a namespace (durable when this returns)')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--namespace <name>', 'namespace name')
    .requiredOption('--payload <json>', 'the message payload, as JSON')
    .option('--key <key>', 'ordering key: messages with the same key are delivered in order')
    .option(
      '--delay <ms>',
      'deliver no earlier than this many milliseconds from now',
      wholeNumber(0, Number.MAX_SAFE_INTEGER),
    )
    .option('--message-id <id>', 'your id for the message; writing it again is a no-op')
    .action(
      async (
        opts: Opts & { namespace: string; payload: string; key?: string; delay?: number; messageId?: string },
      ) => {
        const problem = messageFlagProblem(opts);
        if (problem) throw new CliError(problem);
        let payload: unknown;
        try {
          payload = JSON.parse(opts.payload);
        } catch {
          throw new CliError('--payload must be JSON, e.g. --payload \'{"orderId":42}\'');
        }
        await withDatabase(config(), async (ctx, identity) => {
          const tenant = await findTenantBySlug(identity.deps.db, opts.tenant);
          if (!tenant) throw new CliError(`no tenant with slug "${opts.tenant}"`);
          const db = ctx.db.kysely as Kysely<WalTables>;
          const namespace = await createNamespaceCache(ctx, db).get(tenant.id, opts.namespace);
          if (!namespace)
            throw new CliError(`tenant "${opts.tenant}" has no WAL namespace "${opts.namespace}"`);
          const [receipt] = await withTenant(db, tenant.id, (trx) =>
            writeMessages(trx, tenant.id, namespace, [
              {
                payload,
                key: opts.key,
                messageId: opts.messageId,
                lifecycle: opts.delay ? { delay: opts.delay } : undefined,
              },
            ]),
          );
          console.log(JSON.stringify(receipt, null, 2));
        });
      },
    );

  wal
    .command('tail')
    .argument('<namespace>', 'namespace name')
    .description('print messages of a namespace as they are written (Ctrl-C stops)')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .option('--from-start', 'print the messages already in PostgreSQL first')
    .action(async (namespaceName: string, opts: Opts & { fromStart?: boolean }) => {
      const { tenantId, namespace } = await scope(config(), opts, namespaceName);
      await withDatabase(
        config(),
        async (ctx) => {
          let stopped = false;
          let wake: () => void = () => {};
          process.once('SIGINT', () => {
            stopped = true;
            wake();
          });
          // A stream backend's messages are followed on the backend; PostgreSQL holds the postgres
          // backend's and the outbox rows on their way to a stream backend.
          const followers = await followStreams(ctx, namespace);
          const db = ctx.db.kysely as Kysely<WalTables>;
          const unlisten = await ctx.db.listen('mercato_wal_ready', () => wake());
          const unlistenRelay = await ctx.db.listen('mercato_wal_relay', () => wake());
          let last = opts.fromStart ? NIL_UUID : await newestId(db, tenantId, namespaceName);
          while (!stopped) {
            const rows = await withTenant(db, tenantId, (trx) =>
              trx
                .selectFrom('wal.messages')
                .select(['id', 'message_id', 'ordering_key', 'state', 'payload', 'created_at', 'backend'])
                .where('namespace', '=', namespaceName)
                .where('id', '>', last)
                .orderBy('id')
                .limit(500)
                .execute(),
            );
            for (const row of rows) {
              printMessage({
                messageId: row.message_id,
                key: row.ordering_key,
                state: row.state,
                backend: row.backend,
                createdAt: row.created_at,
                payload: row.payload,
              });
              last = row.id;
            }
            if (rows.length === 500) continue;
            await new Promise<void>((resolve) => {
              wake = resolve;
              setTimeout(resolve, 1000);
            });
          }
          await Promise.all(followers.map((f) => f.stop()));
          await unlisten();
          await unlistenRelay();
        },
        { streams: true },
      );
    });

  wal
    .command('dlq')
    .argument('<namespace>', 'namespace name')
    .description("list a namespace's dead letters, newest first")
    .requiredOption('--tenant <slug>', 'tenant slug')
    .option('--error <text>', 'only those whose error contains this text')
    .option('--limit <n>', 'how many (1 to 1000)', wholeNumber(1, 1000), 50)
    .action(async (namespaceName: string, opts: Opts & { error?: string; limit: number }) => {
      const { tenantId } = await scope(config(), opts, namespaceName);
      await withDatabase(config(), async (ctx) => {
        const db = ctx.db.kysely as Kysely<WalTables>;
        const letters = await withTenant(db, tenantId, (trx) =>
          listDeadLetters(trx, tenantId, namespaceName, opts.error ? { error: opts.error } : {}, opts.limit),
        );
        for (const letter of letters) console.log(JSON.stringify(letter));
        if (letters.length === 0) console.error(`no dead letters in ${namespaceName}`);
      });
    });
}
