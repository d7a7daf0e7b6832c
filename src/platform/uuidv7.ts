import { randomFillSync } from 'node:crypto';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const POOL_BYTES = 8192;

/**
 * A UUIDv7 generator (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit counter in rand_a
 * (RFC 9562 §6.2 method 1) that starts at a random value below 2048 each new millisecond and
 * counts up within it, then 62 random bits. Ids of one generator are strictly increasing, also
 * as text, even when the clock steps back (the last millisecond is kept) or 2,048+ ids fall in one
 * millisecond (it borrows the next). Random bytes come from a pool refilled 8 KiB at a time: on
 * the write path a crypto call per id cost more than the rest of the id.
 */
export function createUuidV7(
  now: () => number = Date.now,
  fill: (bytes: Buffer) => void = (bytes) => randomFillSync(bytes),
): () => string {
  const pool = Buffer.alloc(POOL_BYTES);
  let at = POOL_BYTES;
  /** The offset of n fresh random bytes in the pool (refilled when fewer are left). */
  const take = (n: number): number => {
    if (at + n > POOL_BYTES) {
      fill(pool);
      at = 0;
    }
    at += n;
    return at - n;
  };
  /** A counter start below 2048: room for at least 2048 more ids in its millisecond. */
  const start = (): number => {
    const r = take(2);
    return ((pool[r]! & 0x07) << 8) | pool[r + 1]!;
  };
  let lastMs = -1;
  let counter = 0;
  return () => {
    const ms = now();
    if (ms > lastMs) {
      lastMs = ms;
      counter = start();
    } else if (++counter > 0xfff) {
      lastMs += 1;
      counter = start();
    }
    const hi = Math.floor(lastMs / 0x1000000);
    const lo = lastMs % 0x1000000;
    const r = take(8);
    return (
      `${HEX[(hi >>> 16) & 0xff]}${HEX[(hi >>> 8) & 0xff]}${HEX[hi & 0xff]}${HEX[lo >>> 16]}-` +
      `${HEX[(lo >>> 8) & 0xff]}${HEX[lo & 0xff]}-${HEX[0x70 | (counter >> 8)]}${HEX[counter & 0xff]}-` +
      `${HEX[0x80 | (pool[r]! & 0x3f)]}${HEX[pool[r + 1]!]}-${HEX[pool[r + 2]!]}${HEX[pool[r + 3]!]}` +
      `${HEX[pool[r + 4]!]}${HEX[pool[r + 5]!]}${HEX[pool[r + 6]!]}${HEX[pool[r + 7]!]}`
    );
  };
}

/** The process's generator. */
export const uuidv7 = createUuidV7();

/**
 * The first UUID of millisecond `ms` (clamped to the 48 bits of milliseconds a UUIDv7 holds): no
 * UUIDv7 minted at `ms` or later is below it, none minted before is at or above it. A bound on ids
 * for a range of times.
 */
export function uuidv7Floor(ms: number): string {
  const hex = Math.min(Math.max(Math.floor(ms), 0), 2 ** 48 - 1)
    .toString(16)
    .padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8)}-0000-0000-000000000000`;
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether value is a UUID in its canonical text form (any version, either case), as PostgreSQL's uuid takes it. */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_TEXT.test(value);
}
