import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll } from 'vitest';
import { createTestTenant, type TestTenant } from '../../identity/auth/auth-test-fixtures.ts';
import { withSystem } from '../../platform/db/index.ts';
import { createRedisClient } from '../../platform/redis-client.ts';
import { startTestApp, type TestApp } from '../../platform/testing/index.ts';
import type { StreamBackend, StreamBackendName } from '../backends/stream/contract.ts';
import type { WalTables } from '../tables.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

/** What {@link proxiedBackend} sets up: read its fields in a test or a later beforeAll. */
export type Proxied = {
  t: TestApp;
  tenant: TestTenant;
  /** Between the client and the server: `hold()` stops forwarding (the connection stays up). */
  proxy: TcpProxy;
  /** The platform's own Redis client through the proxy (redis-streams). */
  redis?: Redis;
  /** A NATS connection through the proxy (nats-jetstream). */
  nc?: NatsConnection;
  /** Backends the test opened: closed after the describe. */
  opened: StreamBackend[];
};

/**
 * In a describe: a test app, a tenant (`slug`), and a client of `kind`'s server at `url` reached
 * through a TCP proxy that can stop forwarding (a server that takes the connection and falls
 * silent), all closed after the describe, the proxy released first. The hung-backend tests share it.
 */
export function proxiedBackend(
  kind: StreamBackendName,
  url: string,
  slug: string,
  natsOptions: Omit<NonNullable<Parameters<typeof connect>[0]>, 'servers'> = {},
): Proxied {
  const proxied = { opened: [] as StreamBackend[] } as Proxied;
  beforeAll(async () => {
    proxied.t = await startTestApp();
    proxied.tenant = await createTestTenant(proxied.t, slug);
    const target = new URL(url);
    proxied.proxy = await startTcpProxy(Number(target.port), target.hostname);
    const through = `127.0.0.1:${proxied.proxy.port}`;
    if (kind === 'redis-streams') {
      proxied.redis = await createRedisClient(`redis://${through}`, proxied.t.ctx.logger);
      await proxied.redis.connect();
    } else proxied.nc = await connect({ ...natsOptions, servers: through });
  });
  afterAll(async () => {
    proxied.proxy?.release();
    for (const backend of proxied.opened) await backend.close();
    proxied.redis?.disconnect();
    await proxied.nc?.close();
    await proxied.proxy?.close();
    await proxied.t?.close();
  });
  return proxied;
}

/**
 * `nc` as a NATS backend of `prefix` is to see it: its first request to a subject of that prefix
 * (the first publish to its streams; the KV and JetStream API requests before it pass) makes the
 * proxy hold back every answer of the server from then on: a publish stored and never acknowledged.
 */
export function holdRepliesAfterFirstPublish(
  nc: NatsConnection,
  proxy: TcpProxy,
  prefix: string,
): NatsConnection {
  let armed = true;
  const request: NatsConnection['request'] = (subject, data, options) => {
    if (armed && subject.startsWith(`${prefix}.`)) {
      armed = false;
      proxy.holdReplies();
    }
    return nc.request(subject, data, options);
  };
  return new Proxy(nc, {
    get(target, property) {
      if (property === 'request') return request;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The backend of each row PostgreSQL holds of the namespace (outbox rows and postgres-backend messages). */
export async function backendsInPostgres(db: Kysely<WalTables>, tenantId: string, name: string) {
  const rows = await withSystem(db, (trx) =>
    trx
      .selectFrom('wal.messages')
      .select('backend')
      .where('tenant_id', '=', tenantId)
      .where('namespace', '=', name)
      .execute(),
  );
  return rows.map((r) => r.backend);
}
