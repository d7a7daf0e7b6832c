import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { APP_ROLE } from './tenant-context.ts';

// Any constant works; it must only differ from the migrator's.
const LOCK_KEY = 7_370_912_027;

/** The request role of one database: stable per database name, at most 63 bytes. */
export function requestRoleName(databaseName: string): string {
  return `mercato_rq_${createHash('sha256').update(databaseName).digest('hex').slice(0, 24)}`;
}

/** The request role could not be made or could not log in; the message says what to change. */
export class RequestRoleError extends Error {
  override name = 'RequestRoleError';
}

/**
 * Makes sure this database's request role exists with a known password, and returns a
 * connection string that logs in as it. Runs as the owner, under an advisory lock, so
 * concurrent starts agree on one password. Undefined before migrations have run.
 */
export async function ensureRequestRole(ownerUrl: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: ownerUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    const ready = await client.query(`select to_regclass('platform.request_credentials') is not null as ok`);
    if (!ready.rows[0]?.ok) return undefined;
    const database = (await client.query('select current_database() as name')).rows[0].name as string;
    const role = requestRoleName(database);
    await client.query('begin');
    try {
      await client.query(`select pg_advisory_xact_lock(${LOCK_KEY})`);
      const stored = await client.query(
        'select password from platform.request_credentials where role_name = $1',
        [role],
      );
      const exists = (await client.query('select 1 from pg_roles where rolname = $1', [role])).rowCount === 1;
      let password = stored.rows[0]?.password as string | undefined;
      if (!password || !exists) {
        password = randomBytes(24).toString('base64url');
        const literal = client.escapeLiteral(password);
        const ident = client.escapeIdentifier(role);
        await client.query(
          exists
            ? `alter role ${ident} with login password ${literal}`
            : `create role ${ident} login password ${literal} nosuperuser nocreatedb nocreaterole nobypassrls inherit in role ${APP_ROLE}`,
        );
        await client.query(
          `insert into platform.request_credentials (role_name, password) values ($1, $2)
           on conflict (role_name) do update set password = excluded.password`,
          [role, password],
        );
      }
      await client.query('commit');
      const url = new URL(ownerUrl);
      url.username = role;
      url.password = password;
      return url.toString();
    } catch (error) {
      await client.query('rollback').catch(() => {});
      throw new RequestRoleError(
        `could not create the request role ${role}: ${(error as Error).message}. The DATABASE_URL user needs ` +
          'CREATEROLE (it owns the tables; requests run as a role of their own that cannot bypass row-level security)',
        { cause: error },
      );
    }
  } finally {
    await client.end();
  }
}
