import { type Kysely, sql, type Transaction } from 'kysely';
import { discardCommitQueues, flushCommitQueues, withTenant } from '../../platform/db/index.ts';
import type { Logger } from '../../platform/observability/index.ts';
import type { WalTables } from '../tables.ts';
import type { Delivery, InternalDispatch, TargetResult } from '../targets/target-result.ts';

export type { InternalDispatch };

/** A module's handler for an `internal` target; runs in the transaction that records it in the inbox. */
export type InternalHandler = (trx: Transaction<WalTables>, delivery: Delivery) => Promise<void>;

/**
 * `inbox: false`: the handler has no effect in the Mercato database (it warms a cache, calls an
 * idempotent API): it runs without a transaction or inbox record, at least once, and its `trx`
 * argument is undefined.
 */
export type HandlerOptions = {
  inbox?: boolean;
  /**
   * A set-oriented handler: runs once with every new delivery of a batch (in arrival order)
   * instead of the handler once per delivery. Only with the inbox.
   */
  many?: ManyHandler;
  /**
   * With `many`: the handler may also run in the transaction of the write that carries its
   * messages (inline delivery, src/wal/write/inline-delivery.ts), when that write is a tenant's to
   * a postgres-backend namespace whose system target names it.
   */
  inline?: boolean;
};

/** A handler for the new deliveries of one batch, in the transaction that records them in the inbox. */
export type ManyHandler = (trx: Transaction<WalTables>, deliveries: Delivery[]) => Promise<void>;

/** Thrown by a handler for a failure no retry can fix: the message goes straight to the dead letters. */
export class PermanentDeliveryError extends Error {
  override readonly name = 'PermanentDeliveryError';
}

/** Deliveries of one handler and tenant that share a transaction at most. */
const INBOX_BATCH = 64;

type Entry = { handler: InternalHandler; inbox: boolean; many: ManyHandler | undefined; inline: boolean };

/**
 * Runs an inline handler (HandlerOptions.inline) in the caller's transaction of the tenant, under
 * a savepoint: true when it ran, false when it failed and
 * everything it did was rolled back to the savepoint (the caller's transaction goes on).
 */
export type InlineRun = (
  trx: Transaction<WalTables>,
  handler: string,
  deliveries: Delivery[],
) => Promise<boolean>;
type Waiting = { delivery: Delivery; resolve: (result: TargetResult) => void };

function failed(error: unknown): TargetResult {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof PermanentDeliveryError) return { outcome: 'dead', error: message };
  return { outcome: 'retry', error: message };
}

/**
 * Handlers by name. dispatch runs one in withTenant together with an inbox insert: when the
 * message is already in the handler's inbox the handler is skipped, so a redelivery has no
 * second effect; a concurrent duplicate waits on the inbox row and then skips.
 *
 * Deliveries to one handler of one tenant that arrive together (the delivery engine runs a
 * namespace's messages concurrently) share ONE transaction, as the WAL's group commit shares one
 * INSERT: one inbox insert for all of them, then the handler once per new message, in arrival
 * order (or, for a handler registered with `many`, that one call with all the new messages).
 * When that transaction fails, each of its deliveries runs again alone, so one failing message
 * fails only itself.
 */
export function createInternalHandlers(db: Kysely<WalTables>, log?: Logger) {
  const handlers = new Map<string, Entry>();
  /** Deliveries waiting for the next transaction, by handler and tenant. */
  const queues = new Map<string, { name: string; tenantId: string; waiting: Waiting[] }>();
  let scheduled = false;

  /** One transaction: the inbox rows of every delivery, then the handler for each new one. */
  const runTogether = (name: string, entry: Entry, tenantId: string, deliveries: Delivery[]) =>
    withTenant(db, tenantId, async (trx) => {
      const ids = deliveries.map((d) => d.deliveryId);
      const inserted = await sql<{ pk: string }>`
        insert into wal.inbox (consumer, message_pk, tenant_id)
        select ${name}, pk, ${tenantId} from unnest(${ids}::uuid[]) as pk
        on conflict do nothing
        returning message_pk::text as pk`.execute(trx);
      const fresh = new Set(inserted.rows.map((r) => r.pk));
      const news = deliveries.filter((d) => fresh.delete(d.deliveryId.toLowerCase()));
      if (entry.many) {
        if (news.length > 0) await entry.many(trx, news);
        return;
      }
      for (const delivery of news) await entry.handler(trx, delivery);
    });

  const runInline: InlineRun = async (trx, name, deliveries) => {
    const entry = handlers.get(name);
    if (!entry?.inline || deliveries.length === 0) return false;
    // What the handler queues for the commit (its domain events) is written inside the savepoint,
    // so a rollback to it undoes that too.
    await flushCommitQueues(trx);
    await sql`savepoint inline_delivery`.execute(trx);
    try {
      // No inbox rows: the write stores its messages with this target done, in this transaction,
      // and a target done is never delivered again (requeue keeps targets_done).
      await entry.many!(trx, deliveries);
      await flushCommitQueues(trx);
      await sql`release savepoint inline_delivery`.execute(trx);
      return true;
    } catch (error) {
      // The write goes on; its messages wait for the delivery engine, which retries them as usual.
      log?.warn(
        { err: error, handler: name, messages: deliveries.length },
        'inline delivery failed; the delivery engine takes the messages',
      );
      discardCommitQueues(trx);
      await sql`rollback to savepoint inline_delivery`.execute(trx);
      return false;
    }
  };

  const flush = async (name: string, tenantId: string, waiting: Waiting[]) => {
    const entry = handlers.get(name)!;
    if (waiting.length > 1) {
      try {
        await runTogether(
          name,
          entry,
          tenantId,
          waiting.map((w) => w.delivery),
        );
        for (const w of waiting) w.resolve({ outcome: 'delivered' });
        return;
      } catch {
        // One of them failed (or a deadlock with another batch): each runs alone below.
      }
    }
    for (const w of waiting) {
      try {
        await runTogether(name, entry, tenantId, [w.delivery]);
        w.resolve({ outcome: 'delivered' });
      } catch (error) {
        w.resolve(failed(error));
      }
    }
  };

  const drain = () => {
    scheduled = false;
    const ready = [...queues.values()];
    queues.clear();
    for (const { name, tenantId, waiting } of ready) {
      for (let i = 0; i < waiting.length; i += INBOX_BATCH) {
        void flush(name, tenantId, waiting.slice(i, i + INBOX_BATCH));
      }
    }
  };

  const dispatch: InternalDispatch = async (name, delivery) => {
    const entry = handlers.get(name);
    if (!entry) return { outcome: 'retry', error: `no internal handler "${name}" is registered` };
    if (!entry.inbox) {
      try {
        await entry.handler(undefined as unknown as Transaction<WalTables>, delivery);
        return { outcome: 'delivered' };
      } catch (error) {
        return failed(error);
      }
    }
    return new Promise<TargetResult>((resolve) => {
      const key = `${name}\u0000${delivery.tenantId}`;
      let queue = queues.get(key);
      if (!queue) {
        queue = { name, tenantId: delivery.tenantId, waiting: [] };
        queues.set(key, queue);
      }
      queue.waiting.push({ delivery, resolve });
      if (!scheduled) {
        scheduled = true;
        setImmediate(drain);
      }
    });
  };

  return {
    register(name: string, handler: InternalHandler, options: HandlerOptions = {}): void {
      if (handlers.has(name)) throw new Error(`internal handler "${name}" is already registered`);
      const inbox = options.inbox ?? true;
      if (options.many && !inbox) throw new Error(`internal handler "${name}": many needs the inbox`);
      const inline = options.inline ?? false;
      if (inline && !options.many) throw new Error(`internal handler "${name}": inline needs many`);
      handlers.set(name, { handler, inbox, many: options.many, inline });
    },
    dispatch,
    /** Whether a handler may run inline (registered with `inline`). */
    runsInline: (name: string) => handlers.get(name)?.inline ?? false,
    runInline,
  };
}
