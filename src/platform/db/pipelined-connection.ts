import {
  type DatabaseConnection,
  type Dialect,
  type Driver,
  Kysely,
  type KyselyConfig,
  type KyselyProps,
} from 'kysely';

const refuse = (): never => {
  throw new Error('a transaction cannot be begun, nor a connection taken, inside a transaction');
};

/** A driver for the Kysely pipelined() makes: its one connection is the transaction's, nothing else. */
const NO_DRIVER: Driver = {
  init: async () => {},
  acquireConnection: refuse,
  beginTransaction: refuse,
  commitTransaction: refuse,
  rollbackTransaction: refuse,
  releaseConnection: async () => {},
  destroy: async () => {},
};

/**
 * A Kysely bound to one connection whose statements go out as they are made: each is handed to the
 * connection at once, not after the answer to the one before (Kysely's own connection-bound
 * Kysely queues them). On a node-postgres client in pipeline mode, statements made together, e.g.
 * with Promise.all, therefore cost one round trip; they still run in the order they were made,
 * and one that fails aborts the transaction, so those after it fail too. `bound` is the Kysely
 * Kysely's `connection()` gave for `link` (its compiler, adapter and plugins are kept).
 */
export function pipelined<DB>(bound: Kysely<DB>, link: DatabaseConnection): Kysely<DB> {
  const executor = bound.getExecutor().withConnectionProvider({
    provideConnection: (consume) => consume(link),
  });
  // The config and dialect are only read to make a driver or an introspector, neither of which
  // this Kysely makes; Kysely wants objects there.
  const props: KyselyProps = {
    config: {} as KyselyConfig,
    dialect: {} as Dialect,
    driver: NO_DRIVER,
    executor,
  };
  return new Kysely<DB>(props);
}

/** PostgreSQL's answer to a statement sent after another had aborted the transaction. */
const isAbortedTransaction = (error: unknown) => (error as { code?: unknown })?.code === '25P02';

/**
 * Of the errors of statements sent together on one transaction, the cause: the first that is not
 * "current transaction is aborted" (those failed only because another had aborted it; the order
 * the answers arrive in, or a caller's order, says nothing, since a caller's later statement may
 * have gone out before another caller's earlier one failed).
 */
export function causeOf(errors: readonly unknown[]): unknown {
  return errors.find((error) => !isAbortedTransaction(error)) ?? errors[0];
}

/**
 * Promise.all for work sent together on one transaction: the results once every part has settled
 * (none is left sending statements), or the cause of the failures (causeOf).
 */
export async function together<T extends readonly unknown[] | []>(
  values: T,
): Promise<{ -readonly [P in keyof T]: Awaited<T[P]> }> {
  const settled: PromiseSettledResult<unknown>[] = await Promise.allSettled(values as readonly unknown[]);
  const failed = settled.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason] : []));
  if (failed.length > 0) throw causeOf(failed);
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as never;
}
