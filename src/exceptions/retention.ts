// STUB (helper H4 replaces this file): per-tenant retention, archive and purge.
import type { FastifyInstance } from 'fastify';
import type { ExceptionsDeps } from './deps.ts';

export type PurgeOptions = { olderThanDays?: number | undefined; tenantId?: string | undefined };
export type PurgeProgress = (done: number, total: number) => void;
export type PurgeResult = { archived: number; deleted: number };

export function createRetention(_deps: ExceptionsDeps): {
  routes: (app: FastifyInstance) => Promise<void>;
  start(): void;
  stop(): Promise<void>;
  purge(options: PurgeOptions, progress?: PurgeProgress): Promise<PurgeResult>;
} {
  return {
    routes: async () => {},
    start() {},
    stop: async () => {},
    purge: async () => ({ archived: 0, deleted: 0 }),
  };
}
