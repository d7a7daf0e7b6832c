import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Kysely, sql } from 'kysely';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { withSystem } from '../platform/db/index.ts';
import { CIRCUIT_GAUGE_VALUE, type CircuitBreakers } from './delivery/circuit-breakers.ts';
import type { WalTables } from './tables.ts';
import type { StreamBackends } from './write/append.ts';

export type WalMetrics = {
  writes: Counter<'namespace' | 'backend' | 'outcome'>;
  writeDuration: Histogram<'route'>;
  deliveries: Counter<'namespace' | 'target_type' | 'outcome'>;
  deliveryLatency: Histogram<'namespace'>;
};

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the write routes: the backend of each message the answer acknowledges. */
    walWritten: string[] | undefined;
  }
}

const WRITE_ROUTES: Record<string, string> = {
  '/api/v1/wal/write': 'single',
  '/api/v1/wal/write/batch': 'batch',
};

/**
 * The WAL's Prometheus metrics on the app's registry: writes by namespace, backend and outcome;
 * write latency; delivery attempts by outcome; delivery latency from due time to delivered;
 * dead-letter depth and consumer lag per backend, read when /metrics is scraped; the state of
 * each HTTP target's circuit breaker in this process (0 closed, 1 open, 2 half-open).
 */
export function createWalMetrics(
  registry: Registry,
  db: Kysely<WalTables>,
  streams: StreamBackends = new Map(),
  circuits?: CircuitBreakers,
): WalMetrics {
  const registers = [registry];
  const writes = new Counter({
    name: 'mercato_wal_writes_total',
    help: 'Messages written, by namespace, backend and outcome (accepted, replayed, or the refusal status)',
    labelNames: ['namespace', 'backend', 'outcome'] as const,
    registers,
  });
  const writeDuration = new Histogram({
    name: 'mercato_wal_write_duration_seconds',
    help: 'From the write request to its durable answer',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers,
  });
  const deliveries = new Counter({
    name: 'mercato_wal_delivery_attempts_total',
    help: 'Delivery attempts to one target, by outcome (delivered, retry, dead, disable)',
    labelNames: ['namespace', 'target_type', 'outcome'] as const,
    registers,
  });
  const deliveryLatency = new Histogram({
    name: 'mercato_wal_delivery_latency_seconds',
    help: 'From a message due time to its delivery to a target',
    labelNames: ['namespace'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers,
  });
  new Gauge({
    name: 'mercato_wal_dead_letters',
    help: 'Messages in the dead letters, by namespace',
    labelNames: ['namespace'] as const,
    registers,
    async collect() {
      const { rows } = await withSystem(db, (trx) =>
        sql<{ namespace: string; n: number }>`
          select namespace, count(*)::int as n from wal.messages where state = 'dead' group by namespace`.execute(
          trx,
        ),
      );
      this.reset();
      for (const row of rows) this.set({ namespace: row.namespace }, row.n);
    },
  });
  const lag = async () =>
    (
      await withSystem(db, (trx) =>
        sql<{ n: number; age: number | null }>`
          select count(*)::int as n, extract(epoch from now() - min(fell_due))::float8 as age from (
            select due_at as fell_due from wal.messages
            where state in ('pending', 'scheduled', 'retrying') and due_at <= now() and parked_due_at is null
            union all
            -- Parked behind their key (lease-ctes.ts): waiting since they fell due.
            select parked_due_at from wal.messages where parked_due_at is not null
          ) waiting`.execute(trx),
      )
    ).rows[0];
  // Per backend: postgres from wal.messages, each stream backend from its own server.
  const lags = async () => {
    const own = await lag();
    const entries: [string, { messages: number; seconds: number }][] = [
      ['postgres', { messages: own?.n ?? 0, seconds: own?.age ?? 0 }],
    ];
    for (const stream of streams.values()) {
      const l = await stream.lag().catch(() => undefined);
      if (l) entries.push([stream.name, { messages: l.messages, seconds: l.oldestMs / 1000 }]);
    }
    return entries;
  };
  new Gauge({
    name: 'mercato_wal_consumer_lag_messages',
    help: 'Messages due and not yet delivered, by backend',
    labelNames: ['backend'] as const,
    registers,
    async collect() {
      this.reset();
      for (const [backend, l] of await lags()) this.set({ backend }, l.messages);
    },
  });
  new Gauge({
    name: 'mercato_wal_consumer_lag_seconds',
    help: 'How long the oldest due, undelivered message has waited, by backend',
    labelNames: ['backend'] as const,
    registers,
    async collect() {
      this.reset();
      for (const [backend, l] of await lags()) this.set({ backend }, l.seconds);
    },
  });
  new Gauge({
    name: 'mercato_wal_target_circuit_state',
    help: "An HTTP target's circuit breaker in this process: 0 closed, 1 open (deliveries not attempted), 2 half-open",
    labelNames: ['tenant', 'namespace', 'target'] as const,
    registers,
    collect() {
      this.reset();
      for (const c of circuits?.list() ?? []) {
        const labels = { tenant: c.tenantId, namespace: c.namespace, target: c.target };
        this.set(labels, CIRCUIT_GAUGE_VALUE[c.view.state]);
      }
    },
  });
  return { writes, writeDuration, deliveries, deliveryLatency };
}

/** Counts the answers of the write routes registered in this scope after the call. */
/** The namespace label of refused writes: no namespace can be named so (names are lower case, digits, . _ -). */
const REFUSED = '(refused)';

export function countWrites(app: FastifyInstance, metrics: WalMetrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    record(request, reply);
    done();
  });
  function record(request: FastifyRequest, reply: FastifyReply): void {
    const route = WRITE_ROUTES[request.routeOptions.url ?? ''];
    if (!route) return;
    metrics.writeDuration.observe({ route }, reply.elapsedTime / 1000);
    if (reply.statusCode !== 202 || !request.walWritten) {
      // A refused write's namespace is whatever the caller sent (a made-up name would be a new
      // series kept for good): refusals are counted by their status alone.
      metrics.writes.inc({ namespace: REFUSED, backend: 'none', outcome: String(reply.statusCode) });
      return;
    }
    const body = request.body as { namespace?: unknown } | undefined;
    const namespace = typeof body?.namespace === 'string' ? body.namespace : 'unknown';
    const outcome = reply.getHeader('idempotent-replayed') === 'true' ? 'replayed' : 'accepted';
    for (const backend of request.walWritten) metrics.writes.inc({ namespace, backend, outcome });
  }
}
