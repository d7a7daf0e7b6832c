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

type RedisClass = new (url: string, options: RedisOptions) => Redis;
let cached: RedisClass | undefined;

/**
 * ioredis's Redis, with `commandTimeout` applied as `commandBoundMs` says: the timer is armed
 * before ioredis arms its own, which then leaves it (a command has one timer). `duplicate()`
 * gives the same class, so the WAL's blocking readers keep both the bound and the exemption.
 * Loaded on first use, as ioredis is (the embedded start never loads it).
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
      return super.sendCommand(command, stream);
    }
    override duplicate(override?: Partial<RedisOptions>): Redis {
      return new BoundedRedis({ ...this.options, ...override } as RedisOptions & { replyMapping?: 'legacy' });
    }
  }
  cached = BoundedRedis as unknown as RedisClass;
  return cached;
}
