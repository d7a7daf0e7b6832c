import { AsyncLocalStorage } from 'node:async_hooks';
import type { Command, Redis, RedisOptions } from 'ioredis';

/** ioredis's own timer limit: a longer timer fires at once. About 24.8 days: for ever here. */
const FOR_EVER_MS = 2_147_483_647;

/**
 * The time a command may take before it rejects, given the client's `commandTimeout` (`bound`):
 * the bound, or for a blocking command its block plus the bound (ioredis would otherwise apply
 * the bound to XREADGROUP BLOCK 1000 and fail every idle read). A block of 0 waits for ever by
 * design: not bounded. A blocking command without a block (XREAD without BLOCK) does not block.
 */
export function commandBoundMs(command: Command, bound: number): number {
  if (!commandIsBlocking(command)) return bound;
  const block = command.extractBlockingTimeout();
  if (block === null) return bound;
  if (block === undefined || block <= 0) return FOR_EVER_MS;
  return Math.min(block + bound, FOR_EVER_MS);
}

let flags: { checkFlag(flag: 'BLOCKING_COMMANDS', name: string): boolean } | undefined;
function commandIsBlocking(command: Command): boolean {
  return flags?.checkFlag('BLOCKING_COMMANDS', command.name.toLowerCase()) ?? false;
}

/**
 * A call's commands failed after one of them was written to a connection and before Redis
 * answered it (it timed out, or the connection was lost or reset): Redis may have run it. The
 * call's first failure is the `cause`. See `trackCommands`.
 */
export class RedisOutcomeUnknownError extends Error {
  override readonly name = 'RedisOutcomeUnknownError';
}

/** What became of the commands a call sent (`trackCommands`). */
const calls = new AsyncLocalStorage<Set<Command>>();
const seen = new WeakSet<Command>();
/** Written to a connection (Redis may have it). */
const written = new WeakSet<Command>();
/** Rejected once written, with no reply of Redis: it may have run. */
const unanswered = new WeakSet<Command>();

/**
 * Runs `call`, noting the commands it sends through a client of `boundedRedisClass`. When it
 * fails and one of them was written to a connection and got no reply (rejected for a timeout or a
 * lost connection, or still waiting), throws RedisOutcomeUnknownError: Redis may have run it, so
 * the caller must not act as if it had not. A failure whose commands all got Redis's reply, or
 * never left the client (not connected, its offline queue flushed), is thrown as it is: nothing
 * of it reached Redis, or Redis said what it did.
 */
export async function trackCommands<T>(call: () => Promise<T>): Promise<T> {
  const commands = new Set<Command>();
  try {
    return await calls.run(commands, call);
  } catch (err) {
    const reached = [...commands].some((c) => written.has(c) && (unanswered.has(c) || !c.isSettled));
    if (!reached) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    throw new RedisOutcomeUnknownError(`sent to Redis, no answer (${detail})`, { cause: err });
  }
}

/** Notes a command rejected once written without Redis's reply; on a timeout, resets its connection. */
function watchCommand(redis: Redis, command: Command) {
  const reject = command.reject;
  command.reject = (err: Error) => {
    if (written.has(command) && err?.name !== 'ReplyError') unanswered.add(command);
    reject(err);
    const onThisConnection = () => redis.commandQueue.toArray().some((item) => item.command === command);
    if (err?.message === 'Command timed out' && redis.status === 'ready' && onThisConnection()) {
      const reset = new Error('Connection reset: a command on it got no answer within its bound');
      redis.recoverFromFatalError(reset, reset, { offlineQueue: false });
      // At once: ending it would wait for the silent peer (up to `disconnectTimeout`).
      redis.stream?.destroy();
    }
  };
}

type RedisClass = new (url: string, options: RedisOptions) => Redis;
let cached: RedisClass | undefined;

/**
 * ioredis's Redis, with `commandTimeout` applied as `commandBoundMs` says: the timer is armed
 * before ioredis arms its own, which then leaves it (a command has one timer). `duplicate()`
 * gives the same class, so the WAL's blocking readers keep both the bound and the exemption.
 * Loaded on first use, as ioredis is (the embedded start never loads it).
 *
 * A command that times out on the connection it was written to takes the connection with it: its
 * commands still waiting are rejected ("Connection reset", their outcome unknown), it is
 * destroyed, and the client connects again, as after a lost connection (the outage logged, the
 * status not `ready` until a new connection answers). Otherwise the connection stayed `ready`, the
 * timed-out command in its queue until a reply or a close that a silent peer never sends, and
 * every later command was written behind it, timing out in turn. A blocking read times out only
 * past its block plus the bound, so an idle one never resets its connection.
 */
export async function boundedRedisClass(): Promise<RedisClass> {
  if (cached) return cached;
  const { Redis: Base, Command: CommandClass } = await import('ioredis');
  flags = CommandClass;
  class BoundedRedis extends Base {
    override sendCommand(command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown {
      const bound = this.options.commandTimeout;
      if (typeof bound === 'number' && commandIsBlocking(command))
        command.setTimeout(commandBoundMs(command, bound));
      if (!seen.has(command)) {
        seen.add(command);
        calls.getStore()?.add(command);
        watchCommand(this, command);
      }
      const sent = super.sendCommand(command, stream);
      if (this.commandQueue.peekBack()?.command === command) written.add(command);
      return sent;
    }
    override duplicate(override?: Partial<RedisOptions>): Redis {
      return new BoundedRedis({ ...this.options, ...override } as RedisOptions & { replyMapping?: 'legacy' });
    }
  }
  cached = BoundedRedis as unknown as RedisClass;
  return cached;
}
