import { type Kysely, sql, type Transaction } from 'kysely';
import { withTenant } from '../../platform/db/index.ts';
import type { WalTables } from '../tables.ts';
import type { Delivery, InternalDispatch } from '../targets/target-result.ts';

export type { InternalDispatch };

/** A module's handler for an `internal` target; runs in the transaction that records it in the inbox. */
export type InternalHandler = (trx: Transaction<WalTables>, delivery: Delivery) => Promise<void>;

/**
 * `inbox: false`: the handler has no effect in the Mercato database (it warms a cache, calls an
 * idempotent API): it runs without a transaction or inbox record, at least once, and its `trx`
 * argument is undefined.
 */
export type HandlerOptions = { inbox?: boolean };

/** Thrown by a handler for a failure no retry can fix: the message goes straight to the dead letters. */
export class PermanentDeliveryError extends Error {
  override readonly name = 'PermanentDeliveryError';
}

/**
 * Handlers by name. dispatch runs one in withTenant together with an inbox insert: when the
 * message is already in the handler's inbox the handler is skipped, so a redelivery has no
 * second effect; a concurrent duplicate waits on the inbox row and then skips.
 */
export function createInternalHandlers(db: Kysely<WalTables>) {
  const handlers = new Map<string, { handler: InternalHandler; inbox: boolean }>();

  const dispatch: InternalDispatch = async (name, delivery) => {
    const entry = handlers.get(name);
    if (!entry) return { outcome: 'retry', error: `no internal handler "${name}" is registered` };
    const { handler } = entry;
    try {
      if (!entry.inbox) {
        await handler(undefined as unknown as Transaction<WalTables>, delivery);
        return { outcome: 'delivered' };
      }
      await withTenant(db, delivery.tenantId, async (trx) => {
        const inserted = await sql`
          insert into wal.inbox (consumer, message_pk, tenant_id)
          values (${name}, ${delivery.deliveryId}, ${delivery.tenantId})
          on conflict do nothing
          returning 1 as one`.execute(trx);
        if (inserted.rows.length === 0) return;
        await handler(trx, delivery);
      });
      return { outcome: 'delivered' };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof PermanentDeliveryError) return { outcome: 'dead', error: message };
      return { outcome: 'retry', error: message };
    }
  };

  return {
    register(name: string, handler: InternalHandler, options: HandlerOptions = {}): void {
      if (handlers.has(name)) throw new Error(`internal handler "${name}" is already registered`);
      handlers.set(name, { handler, inbox: options.inbox ?? true });
    },
    dispatch,
  };
}
