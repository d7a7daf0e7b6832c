import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import pino from 'pino';
import type { Namespace } from '../../namespaces/namespace.ts';
import type { NewMessageRow } from '../postgres/group-commit.ts';
import type {
  AttemptHistory,
  AttemptRecord,
  Decision,
  StreamBackend,
  StreamConsumerDeps,
  StreamMessage,
} from '../stream/contract.ts';
import { createRedisStreamsBackend } from './index.ts';

export function testNamespace(overrides: Partial<Namespace> = {}): Namespace {
  return {
    tenantId: randomUUID(),
    name: 'orders',
    backend: 'redis-streams',
    fallbackBackend: null,
    drainingBackends: [],
    payloadSchema: null,
    retry: { strategy: 'fixed', baseDelayMs: 50, maxDelayMs: 1000, maxAttempts: 5, jitter: 0 },
    targets: [{ type: 'internal', name: 't', enabled: true, handler: 'test.handler' }],
    rateLimitPerSecond: null,
    maxDelayMs: 86_400_000,
    maxPayloadBytes: 65_536,
    deliveredRetentionSeconds: 3600,
    deadRetentionSeconds: 3600,
    allowedHosts: [],
    consumerConcurrency: 4,
    enabled: true,
    system: false,
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
    ...overrides,
  };
}

export function row(
  ns: Namespace,
  messageId: string,
  options: { key?: string; dueAt?: number; hash?: string; payload?: unknown } = {},
): NewMessageRow {
  const now = new Date();
  return {
    id: randomUUID(),
    tenant_id: ns.tenantId,
    namespace: ns.name,
    message_id: messageId,
    ordering_key: options.key ?? null,
    payload: JSON.stringify(options.payload ?? { messageId }),
    headers: '{}',
    request_hash: options.hash ?? `hash-${messageId}`,
    backend: 'redis-streams',
    state: 'pending',
    due_at: new Date(options.dueAt ?? now.getTime()),
    max_attempts: ns.retry.maxAttempts,
    created_at: now,
  };
}

export const record = (outcome: AttemptRecord['outcome'] = 'delivered', error?: string): AttemptRecord => ({
  target: 't',
  startedAt: new Date(),
  finishedAt: new Date(),
  outcome,
  ...(error ? { error } : {}),
});

export const ack = (): Decision => ({ action: 'ack', targetsDone: ['t'], attempts: [record()] });
export const retry = (delayMs = 50): Decision => ({
  action: 'retry',
  delayMs,
  error: 'boom',
  targetsDone: [],
  attempts: [record('failed', 'boom')],
});
export const dead = (): Decision => ({
  action: 'dead',
  error: 'gone for good',
  targetsDone: [],
  attempts: [record('dead', 'gone for good')],
});

export type Call = { message: StreamMessage; history: AttemptHistory; at: number };

/** A logger whose lines (JSON) land in `lines`. */
export function captureLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: pino({ level: 'warn' }, stream), lines };
}

export function consumerDeps(
  namespaces: Namespace[],
  decide: (message: StreamMessage, calls: Call[]) => Decision | Promise<Decision>,
  options: { leaseMs?: number; logger?: pino.Logger } = {},
) {
  const calls: Call[] = [];
  const deps: StreamConsumerDeps = {
    logger: options.logger ?? pino({ level: 'silent' }),
    namespaces: async () => namespaces,
    onNamespacesChanged: () => () => {},
    leaseMs: options.leaseMs ?? 30_000,
    async deliver(_namespace, message, history) {
      calls.push({ message, history, at: Date.now() });
      return decide(message, calls);
    },
  };
  return { deps, calls };
}

export async function eventually<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error('eventually: timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A client, a unique prefix, backends on it, and the cleanup of all of it. */
export async function harness(url: string) {
  const redis = new Redis(url);
  await redis.ping();
  const prefix = `mercato-test:rs:${process.pid}:${randomUUID().slice(0, 8)}`;
  const backends: StreamBackend[] = [];
  const extra: Redis[] = [];
  return {
    redis,
    prefix,
    backend(consumerName?: string) {
      const b = createRedisStreamsBackend(redis, {
        prefix,
        blockMs: 200,
        ...(consumerName ? { consumerName } : {}),
      });
      backends.push(b);
      return b;
    },
    client() {
      const c = new Redis(url);
      extra.push(c);
      return c;
    },
    async cleanup() {
      await Promise.all(backends.map((b) => b.close()));
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
      await Promise.all(extra.map((c) => c.quit()));
      await redis.quit();
    },
  };
}
