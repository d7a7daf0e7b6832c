import type { Redis } from 'ioredis';
import { type NsKeys, registryKey } from './keys.ts';

/**
 * How long a dropped namespace's drop marker is kept: every process hears of a deletion in
 * milliseconds (a NOTIFY; a listener that reconnects reloads every namespace), and until it has,
 * its consumer and its writes must not make the namespace's keys again. An hour is far beyond
 * that; the marker then goes, so that a deleted namespace leaves nothing behind for good.
 */
export const DROP_MARKER_SECONDS = 3600;

/**
 * Deletes every key of the namespace (its deletion): first the drop marker (`createdAt`: the
 * deleted namespace's, or '*' for any; see README, Who makes the stream), so that nothing makes
 * them again meanwhile, then a SCAN of its base and UNLINKs, the retired marker, its registry entry.
 */
export async function dropKeys(redis: Redis, prefix: string, keys: NsKeys, createdAt: string | undefined) {
  const { base } = keys;
  await redis.set(keys.dropped, createdAt ?? '*', 'EX', DROP_MARKER_SECONDS);
  // Every key of the namespace starts with its base (glob characters escaped). The client's
  // keyPrefix is not added to MATCH patterns, so it is added here and taken off the answers.
  const keyPrefix = redis.options.keyPrefix ?? '';
  const pattern = `${`${keyPrefix}${base}`.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (found.length > 0) await redis.unlink(...found.map((k) => k.slice(keyPrefix.length)));
  } while (cursor !== '0');
  await redis.del(keys.retired);
  await redis.srem(registryKey(prefix), base);
}
