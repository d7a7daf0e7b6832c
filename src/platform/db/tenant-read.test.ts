import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloneTestDatabase, testDatabaseKind } from '../testing/test-databases.ts';
import type { Database } from './index.ts';
import { readAsTenant, withSystem } from './index.ts';

const A = '00000000-0000-7000-8000-00000000000a';
const B = '00000000-0000-7000-8000-00000000000b';
// Strings a careless inliner would turn into SQL.
const HOSTILE = [
  "o'brien",
  "'; drop table identity.tenants; --",
  'back\\slash\\',
  '$1 $2 $10',
  'dollar $$ quote',
];

describe(`readAsTenant on ${testDatabaseKind()}`, () => {
  let database: Awaited<ReturnType<typeof cloneTestDatabase>>;
  let db: Database['kysely'];

  beforeAll(async () => {
    database = await cloneTestDatabase();
    db = database.db.kysely;
    await withSystem(db, async (trx) => {
      for (const [id, slug] of [
        [A, 'tenant-a'],
        [B, 'tenant-b'],
      ] as const) {
        await sql`insert into identity.tenants (id, slug, name) values (${id}, ${slug}, ${slug})`.execute(
          trx,
        );
        for (const [i, name] of HOSTILE.entries()) {
          await sql`insert into identity.users (id, tenant_id, email, password_hash, name, role)
            values (${`${id.slice(0, -3)}${slug.at(-1)}0${i}`}, ${id}, ${`u${i}@${slug}.test`}, 'x', ${name}, 'customer')`.execute(
            trx,
          );
        }
      }
    });
  });
  afterAll(() => database.drop());

  it('sees only the tenant it reads as, even without a tenant filter', async () => {
    const rows = await readAsTenant(db, A, (k) => k.selectFrom('identity.users').select(['tenant_id']));
    expect(rows).toHaveLength(HOSTILE.length);
    expect(rows.every((r) => r.tenant_id === A)).toBe(true);
  });

  it('passes hostile strings as data, never as SQL', async () => {
    for (const name of HOSTILE) {
      const rows = await readAsTenant(db, B, (k) =>
        k.selectFrom('identity.users').select(['name', 'email']).where('name', '=', name),
      );
      expect(rows.map((r) => r.name)).toEqual([name]);
    }
    const tenants = await withSystem(db, (trx) =>
      trx.selectFrom('identity.tenants').select('slug').execute(),
    );
    expect(tenants.map((t) => t.slug)).toContain('tenant-a');
  });

  it('inlines several hostile values in one statement without one leaking into another', async () => {
    const rows = await readAsTenant(db, B, (k) =>
      k.selectFrom('identity.users').select('name').where('name', 'in', HOSTILE).orderBy('name'),
    );
    expect(rows.map((r) => r.name)).toEqual([...HOSTILE].sort((x, y) => (x < y ? -1 : 1)));
  });

  it('binds numbers, booleans, dates and null, and keeps $1 apart from $10', async () => {
    const rows = await readAsTenant(db, A, (k) =>
      k
        .selectFrom('identity.users')
        .select('email')
        .where('created_at', '<', new Date(Date.now() + 60_000))
        .where('phone', 'is', null)
        .where((eb) => eb.or([eb('email', '=', 'u0@tenant-a.test'), eb(eb.val(1), '=', 2)]))
        .where((eb) => eb.and(Array.from({ length: 10 }, (_, i) => eb(eb.val(i), '=', eb.val(i))))),
    );
    expect(rows).toEqual([{ email: 'u0@tenant-a.test' }]);
  });

  it('refuses a tenant id that is not a UUID before sending anything', async () => {
    const attempt = readAsTenant(db, "x'); select 1; --", (k) => k.selectFrom('identity.users').select('id'));
    if (testDatabaseKind() === 'postgres') await expect(attempt).rejects.toThrow(/must be a UUID/);
    else await expect(attempt).rejects.toThrow();
  });
});
