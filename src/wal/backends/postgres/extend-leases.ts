import { type Kysely, sql } from 'kysely';
import { type JsonColumn, jsonRows, withSystem } from '../../../platform/db/index.ts';
import type { WalTables } from '../../tables.ts';

type Db = Kysely<WalTables>;

/** The leases extendLeases renews (jsonRows). */
const LEASES: JsonColumn[] = [
  ['id', 'uuid'],
  ['lease_token', 'uuid'],
];

/**
 * Extends the leases a consumer still holds (same token) by `leaseMs` from now, so a slow target
 * does not see its message handed to another consumer. Returns the ids whose lease was extended;
 * a missing id was taken over or finished.
 */
export async function extendLeases(
  db: Db,
  items: { id: string; leaseToken: string }[],
  leaseMs: number,
): Promise<string[]> {
  if (items.length === 0) return [];
  const input = items.map((i) => [i.id, i.leaseToken]);
  const result = await withSystem(db, (trx) =>
    sql<{ id: string }>`
      update wal.messages m
      set lease_expires_at = now() + ${leaseMs} * interval '1 millisecond'
      from ${jsonRows(LEASES, input)} as x
      where m.id = x.id and m.lease_token = x.lease_token and m.state = 'delivering'
      returning m.id`.execute(trx),
  );
  return result.rows.map((r) => r.id);
}
