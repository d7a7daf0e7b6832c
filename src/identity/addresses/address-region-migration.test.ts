import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { testDatabaseKind } from '../../platform/testing/test-databases.ts';
import { migrationFixture } from '../migration-test-fixtures.ts';
import { REGIONS, regionCode } from './regions.ts';

const kind = testDatabaseKind();
const { databaseBefore, cleanup } = migrationFixture('identity');
afterAll(cleanup);

const tenant = (n: number) => `01a241c6-2574-7cc5-a939-95b05b9bb0${String(n).padStart(2, '0')}`;
const user = (n: number) => `01a241c6-2574-7cc5-a939-95b05b9bb1${String(n).padStart(2, '0')}`;
let count = 0;
const addressId = () => {
  count += 1;
  return `01a241c6-0000-7000-8001-${String(count).padStart(12, '0')}`;
};

describe(`identity migration 0073 on ${kind}`, () => {
  it("rewrites address-book regions of the listed countries that are a region's name to its code, tenant by tenant", async () => {
    const { db, next } = await databaseBefore('0073', '0074');
    const [A, B, C] = [tenant(1), tenant(2), tenant(3)];
    await sql`insert into identity.tenants (id, slug, name)
      values (${A}, 'book-a', 'A'), (${B}, 'book-b', 'B'), (${C}, 'book-c', 'C')`.execute(db.kysely);
    for (const [n, tenantId] of [A, B, C].entries()) {
      await sql`insert into identity.users (id, tenant_id, email, password_hash, name, role)
        values (${user(n)}, ${tenantId}, ${`c${n}@book.test`}, '', 'c', 'customer')`.execute(db.kysely);
    }
    const rows: [string, string, string, string | null][] = [];
    const add = (tenantId: string, country: string, region: string | null) => {
      const id = addressId();
      rows.push([id, tenantId, country, region]);
      return id;
    };
    // Tenant A: every first name of the list, tenant B the second ones, so the migration's list is regions.ts's.
    for (const [country, codes] of Object.entries(REGIONS)) {
      for (const names of Object.values(codes)) {
        add(A, country, names[0]!);
        if (names[1]) add(B, country, names[1]);
      }
    }
    // Tenant C: a name in other letters with spaces around it, and what is left alone: a text of no
    // region, no region, a code in small letters, another country's region named like one.
    const shouted = add(C, 'US', ' NEW YORK ');
    const typo = add(C, 'US', 'Mass.');
    const none = add(C, 'US', null);
    const small = add(C, 'CA', 'qc');
    const german = add(C, 'DE', 'Victoria');
    const owner = new Map([A, B, C].map((id, n) => [id, user(n)]));
    for (const [id, tenantId, country, region] of rows) {
      await sql`insert into identity.addresses
          (id, tenant_id, user_id, type, recipient, line1, city, region, postal_code, country)
        values (${id}, ${tenantId}, ${owner.get(tenantId)!}, 'SHIPPING', 'Ann', '1 Main St', 'City',
          ${region}, '00000', ${country})`.execute(db.kysely);
    }

    const upgrade = await next();
    expect(upgrade.error).toBeUndefined();
    expect(upgrade.applied.at(-1)).toMatch(/^0073_/);

    const after = await sql<{ id: string; region: string | null }>`
      select id, region from identity.addresses order by id`.execute(db.kysely);
    const region = new Map(after.rows.map((r) => [r.id, r.region]));
    for (const [id, tenantId, country, before] of rows) {
      if (tenantId !== C)
        expect([country, before, region.get(id)]).toEqual([country, before, regionCode(country, before!)]);
    }
    expect(region.get(shouted)).toBe('NY');
    expect(region.get(typo)).toBe('Mass.');
    expect(region.get(none)).toBeNull();
    expect(region.get(small)).toBe('qc');
    expect(region.get(german)).toBe('Victoria');
  });
});
