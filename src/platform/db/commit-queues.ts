import type { CompiledQuery, Kysely } from 'kysely';

/**
 * What a queue writes: ONE statement for all its items, and what its failure means to the caller
 * (an error of the caller's catalogue), applied to the database's error.
 */
export type CommitStatement = { query: CompiledQuery; failure?: (error: unknown) => unknown };

type CommitQueue = { items: unknown[]; statement(items: unknown[]): CommitStatement };

// A withTenant transaction in progress → what its callers queued for just before its commit.
const commitQueues = new WeakMap<object, Map<object, CommitQueue>>();

/**
 * The items `owner` queued in `trx` (a withTenant transaction in progress), to push to: on first
 * use the list is made and `statement` set to write it in `trx` just before the commit, once,
 * after the caller's work (a rollback drops the list). On node-postgres that statement goes out
 * together with the COMMIT (pipelined: one round trip for both). Undefined when `trx` is no
 * withTenant transaction in progress: the caller writes at once. The domain events use it to
 * write all of a transaction's events in one outbox insert.
 */
export function commitQueue<T>(
  trx: object,
  owner: object,
  statement: (items: T[]) => CommitStatement,
): T[] | undefined {
  const queues = commitQueues.get(trx);
  if (!queues) return undefined;
  let queue = queues.get(owner);
  if (!queue) {
    queue = { items: [], statement: statement as CommitQueue['statement'] };
    queues.set(owner, queue);
  }
  return queue.items as T[];
}

/** Runs one statement in `db` (a transaction), its failure mapped as the statement says. */
export async function runCommitStatement(db: Kysely<unknown>, statement: CommitStatement): Promise<void> {
  try {
    await db.executeQuery(statement.query);
  } catch (error) {
    throw statement.failure ? statement.failure(error) : error;
  }
}

/**
 * Writes what is queued in `trx` now rather than at its commit (a no-op outside a withTenant
 * transaction): before a savepoint is released, so its rollback could still undo the writes; before
 * taking a hot row's lock, so the writes are not made while holding it.
 */
export async function flushCommitQueues(trx: object): Promise<void> {
  for (const statement of takeCommitStatements(trx))
    await runCommitStatement(trx as Kysely<unknown>, statement);
}

/**
 * Defers ONE statement of `owner` to the commit of `trx` (a withTenant transaction in progress;
 * on node-postgres it then goes out with the COMMIT, one round trip less): for a write that
 * nothing in `trx` reads before the commit, or only `owner`'s own code, which calls
 * flushDeferred first. A statement `owner` deferred before is written now, so their order holds.
 * Outside such a transaction the statement runs at once.
 */
export async function deferToCommit(trx: object, owner: object, statement: CommitStatement): Promise<void> {
  const queues = commitQueues.get(trx);
  if (!queues) return runCommitStatement(trx as Kysely<unknown>, statement);
  const flushed = flushDeferred(trx, owner);
  if (flushed) await flushed;
  queues.set(owner, { items: [statement], statement: () => statement });
}

/**
 * Writes what `owner` deferred in `trx` (deferToCommit) now: before reading what it writes.
 * Undefined when there is nothing to write, so a caller need not await (and its statements made
 * in `together` with others still go out in the order they are made).
 */
export function flushDeferred(trx: object, owner: object): Promise<void> | undefined {
  const queues = commitQueues.get(trx);
  const queue = queues?.get(owner);
  if (!queue || queue.items.length === 0) return undefined;
  queues!.delete(owner);
  return runCommitStatement(trx as Kysely<unknown>, queue.statement(queue.items));
}

/** Forgets what is queued in `trx`: after a rollback to a savepoint taken with the queues empty. */
export function discardCommitQueues(trx: object): void {
  commitQueues.get(trx)?.clear();
}

/** Starts queueing for `trx`: withTenant's transactions, from their first statement. */
export function openCommitQueues(trx: object): void {
  commitQueues.set(trx, new Map<object, CommitQueue>());
}

/** Stops queueing for `trx`: what was queued and not taken is dropped (its transaction rolled back). */
export function closeCommitQueues(trx: object): void {
  commitQueues.delete(trx);
}

/**
 * The statements that write what is queued in `trx`, one per queue with items, in the order the
 * queues were first used; the queues are emptied. Making a statement queues nothing more.
 */
export function takeCommitStatements(trx: object): CommitStatement[] {
  const queues = commitQueues.get(trx);
  if (!queues) return [];
  const statements: CommitStatement[] = [];
  for (const queue of queues.values())
    if (queue.items.length > 0) statements.push(queue.statement(queue.items));
  queues.clear();
  return statements;
}
