import type { Kysely } from 'kysely';
import { withSystem } from '../platform/db/index.ts';
import type { HealthCheck } from '../platform/observability/index.ts';
import type { WalTables } from './tables.ts';
import type { StreamBackends } from './write/append.ts';

/**
 * The WAL's readiness checks. The postgres backend is the database itself; its tables must
 * answer. Each stream backend this process has must answer a ping.
 */
export function walHealthChecks(db: Kysely<WalTables>, streams: StreamBackends): HealthCheck[] {
  return [
    {
      name: 'wal:postgres',
      check: async () => {
        await withSystem(db, (trx) => trx.selectFrom('wal.namespaces').select('name').limit(1).execute());
        return true;
      },
    },
    ...[...streams.values()].map((stream) => ({
      name: `wal:${stream.name}`,
      check: async () => {
        await stream.ping();
        return true;
      },
    })),
  ];
}
