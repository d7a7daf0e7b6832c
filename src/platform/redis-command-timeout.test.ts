import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTcpProxy, type TcpProxy } from '../wal/e2e/tcp-proxy.ts';
import { createLogger } from './observability/index.ts';
import { closeRedis, createRedisClient, REDIS_COMMAND_TIMEOUT_MS } from './redis-client.ts';
import { testRedisUrl } from './testing/index.ts';

// A Redis that takes the connection and then says nothing (stopped, overloaded, a network dropping
// packets: the connection stays up): before, the platform's client gave a command no timeout, so
// it waited for ever, and with it the request that sent it (every rate-limited request: the
// fallback to in-process counters only looks at the client's status, still "ready"). Redis is
// reached through a proxy that stops forwarding. Bounds only, never precise timings.
const BOUND = REDIS_COMMAND_TIMEOUT_MS;
const MARGIN = 1_500;
const BLOCK = 1_000;

/** 'resolved' / 'rejected' if `promise` settled within `ms`, else 'pending'. */
function settledWithin(promise: Promise<unknown>, ms: number): Promise<'resolved' | 'rejected' | 'pending'> {
  return Promise.race([
    promise.then(
      () => 'resolved' as const,
      () => 'rejected' as const,
    ),
    new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms)),
  ]);
}

describe.skipIf(!testRedisUrl())("the platform's Redis client on a connection that stays silent", () => {
  let proxy: TcpProxy;
  let redis: Redis;
  let reader: Redis;
  const key = `mercato-test:redis-timeout:${process.pid}:${Date.now()}`;

  beforeAll(async () => {
    const target = new URL(testRedisUrl()!);
    proxy = await startTcpProxy(Number(target.port), target.hostname);
    redis = await createRedisClient(`redis://127.0.0.1:${proxy.port}`, createLogger('silent'));
    await redis.connect();
    reader = redis.duplicate();
    reader.on('error', () => {});
    await reader.xgroup('CREATE', key, 'g', '$', 'MKSTREAM');
  });
  afterAll(async () => {
    proxy?.release();
    await redis?.del(key, `${key}:n`).catch(() => {});
    if (reader) await closeRedis(reader);
    if (redis) await closeRedis(redis);
    await proxy?.close();
  });

  it('still serves a blocking read longer than the bound, on a duplicate (the WAL reader)', {
    timeout: 30_000,
  }, async () => {
    // Idle: nothing to read, so Redis answers null after the block, past the command bound.
    const longBlock = BOUND + BLOCK;
    const reply = reader.xreadgroup('GROUP', 'g', 'c', 'COUNT', 1, 'BLOCK', longBlock, 'STREAMS', key, '>');
    await expect(reply).resolves.toBeNull();
    await expect(reader.xread('BLOCK', longBlock, 'STREAMS', key, '$')).resolves.toBeNull();
  });

  it('rejects a command, and a blocking read, that get no answer within their bound', {
    timeout: 30_000,
  }, async () => {
    proxy.hold();
    const get = redis.get(key);
    const incr = redis.incr(`${key}:n`);
    const read = reader.xreadgroup('GROUP', 'g', 'c', 'COUNT', 1, 'BLOCK', BLOCK, 'STREAMS', key, '>');
    const [getOutcome, incrOutcome, readOutcome] = await Promise.all([
      settledWithin(get, BOUND + MARGIN),
      settledWithin(incr, BOUND + MARGIN),
      settledWithin(read, BLOCK + BOUND + MARGIN),
    ]);
    expect({ getOutcome, incrOutcome, readOutcome }).toEqual({
      getOutcome: 'rejected',
      incrOutcome: 'rejected',
      readOutcome: 'rejected',
    });
    await expect(get).rejects.toThrow('Command timed out');
    proxy.release();
    // The connection was never lost: once Redis answers again, so does the client.
    await expect(redis.ping()).resolves.toBe('PONG');
  });
});

// A connection that falls silent without a word (a NAT or firewall that dropped it; Redis itself is
// well): a command on it times out, and stayed in the client's queue, the connection "ready", so
// every later command was written to the same dead connection and timed out in turn, for as long
// as the operating system kept it (hours). After a command times out, the connection is dropped
// and made again (its other commands in flight fail with it), and later ones reach Redis.
describe.skipIf(!testRedisUrl())("the platform's Redis client after a command got no answer", () => {
  const SHORT = 500;
  let proxy: TcpProxy;
  let redis: Redis;
  const key = `mercato-test:redis-silent-conn:${process.pid}:${Date.now()}`;

  beforeAll(async () => {
    const target = new URL(testRedisUrl()!);
    proxy = await startTcpProxy(Number(target.port), target.hostname);
    redis = await createRedisClient(`redis://127.0.0.1:${proxy.port}`, createLogger('silent'), SHORT);
    await redis.connect();
  });
  afterAll(async () => {
    proxy?.release();
    await redis?.del(key).catch(() => {});
    if (redis) await closeRedis(redis);
    await proxy?.close();
  });

  it('answers later commands on a new connection instead of the silent one', {
    timeout: 30_000,
  }, async () => {
    await redis.set(key, 'v');
    proxy.holdOpen();
    await expect(redis.get(key)).rejects.toThrow('Command timed out');
    // Redis is well: the next commands get their answers, on a connection of their own.
    const later = redis.get(key);
    expect(await settledWithin(later, SHORT * 6)).toBe('resolved');
    await expect(later).resolves.toBe('v');
  });
});
