import type { NatsConnection } from '@nats-io/transport-node';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Transaction } from 'kysely';
import type { Config } from './config/index.ts';
import type { Database } from './db/index.ts';
import type { CounterStore } from './http/counter-store.ts';
import type { NatsHandle } from './nats-client.ts';
import type { HealthCheck, Logger, Metrics } from './observability/index.ts';

/** What every module receives: the shared resources of one process. Passed as an argument, never global. */
export type AppContext = {
  config: Config;
  db: Database;
  logger: Logger;
  metrics: Metrics;
  redis: Redis | undefined;
  /** Set once NATS_URL is reached: undefined while it is unreachable at start (see natsHandle). */
  nats: NatsConnection | undefined;
  /** With NATS_URL: the connection that may come later (NATS unreachable at start). */
  natsHandle?: NatsHandle;
  counters: CounterStore;
};

/** A module mounts its routes under /api/v1 and may run background jobs while the process lives. */
export type MercatoModule = {
  name: string;
  /** Mounts routes; called inside a Fastify plugin prefixed with /api/v1. */
  routes?(app: FastifyInstance): Promise<void>;
  /** Routes outside /api/v1 (for example /.well-known/jwks.json). */
  rootRoutes?(app: FastifyInstance): Promise<void>;
  /**
   * Runs on every request before its credential is verified; answering (reply sent, true returned)
   * ends the request there. Only for answers that reveal nothing a caller could not see anyway and
   * change nothing (a flash sale's sold-out refusal), where the signature check would cost more
   * than the answer.
   */
  beforeAuth?(request: FastifyRequest, reply: FastifyReply): boolean;
  healthChecks?: HealthCheck[];
  /**
   * What every tenant has of this module, made in a new tenant's creation transaction (the WAL:
   * its system namespaces); the composition root hands it to identity (IdentityDeps.onTenantCreated).
   */
  // biome-ignore lint/suspicious/noExplicitAny: the module casts to its own tables
  onTenantCreated?(trx: Transaction<any>, tenantId: string): Promise<void>;
  start?(): Promise<void>;
  stop?(): Promise<void>;
};
