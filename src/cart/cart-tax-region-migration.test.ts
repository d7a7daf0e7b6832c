import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { REGIONS, regionCode } from '../identity/index.ts';
import { migrationFixture } from '../identity/migration-test-fixtures.ts';
import { testDatabaseKind } from '../platform/testing/test-databases.ts';

const kind = testDatabaseKind();
const { databaseBefore, cleanup } = migrationFixture('cart');
afterAll(cleanup);

const tenant = (n: number) => `01a241c6-2573-7cc5-a939-95b05b9bb0${String(n).padStart(2, '0')}`;
let rates = 0;
const rateId = () => {
  rates += 1;
  return `01a241c6-0000-7000-8000-${String(rates).padStart(12, '0')}`;
};

describe(`cart migration 0073 on ${kind}`, () => {
  it('rewrites stored region names of the listed countries to their codes, the first of two that would collide only', async () => {
    const { db, next } = await databaseBefore('0073', '0074');
    const [A, B, C] = [tenant(1), tenant(2), tenant(3)];
    await sql`insert into identity.tenants (id, slug, name)
      values (${A}, 'old-a', 'A'), (${B}, 'old-b', 'B'), (${C}, 'old-c', 'C')`.execute(db.kysely);
    const rows: [string, string, string, string][] = [];
    const add = (tenantId: string, country: string, region: string) => {
      const id = rateId();
      rows.push([id, tenantId, country, region]);
      return id;
    };
    // Tenant A: every name of the list (tenant B the second names), so the migration's list is this module's.
    for (const [country, codes] of Object.entries(REGIONS)) {
      for (const names of Object.values(codes)) {
        add(A, country, names[0]!);
        if (names[1]) add(B, country, names[1]);
      }
    }
    // Tenant C: a name beside its code (kept as it was), two names of one region (the first wins),
    // a name in other letters, a text of no region, and another country's region named like one.
    const kept = add(C, 'US', 'California');
    add(C, 'US', 'CA');
    const first = add(C, 'CA', 'Quebec');
    const second = add(C, 'CA', 'québec');
    const shouted = add(C, 'US', 'NEW YORK');
    const other = add(C, 'US', 'Calif.');
    const german = add(C, 'DE', 'Victoria');
    for (const [id, tenantId, country, region] of rows) {
      await sql`insert into cart.tax_rates (id, tenant_id, country, region, rate_bps, name)
        values (${id}, ${tenantId}, ${country}, ${region}, 100, 'rate')`.execute(db.kysely);
    }

    const upgrade = await next();
    expect(upgrade.error).toBeUndefined();
    expect(upgrade.applied.at(-1)).toMatch(/^0073_/);

    const after = await sql<{ id: string; tenant_id: string; country: string; region: string }>`
      select id, tenant_id, country, region from cart.tax_rates order by id`.execute(db.kysely);
    const region = new Map(after.rows.map((r) => [r.id, r.region]));
    for (const [id, tenantId, country, before] of rows) {
      if (tenantId !== C)
        expect([country, before, region.get(id)]).toEqual([country, before, regionCode(country, before)]);
    }
    expect(region.get(kept)).toBe('California');
    expect(region.get(first)).toBe('QC');
    expect(region.get(second)).toBe('québec');
    expect(region.get(shouted)).toBe('NY');
    expect(region.get(other)).toBe('Calif.');
    expect(region.get(german)).toBe('Victoria');
  });
});

describe('the regions of the listed countries', () => {
  it('are every ISO 3166-2 subdivision of the United States (and the armed forces), Canada and Australia', () => {
    expect(Object.keys(REGIONS['US']!)).toHaveLength(50 + 1 + 6 + 3);
    expect(Object.keys(REGIONS['CA']!)).toHaveLength(13);
    expect(Object.keys(REGIONS['AU']!)).toHaveLength(8);
    expect(regionCode('us', ' district  of columbia ')).toBe('DC');
    expect(regionCode('CA', 'ile-du-prince-edouard')).toBe('PE');
    expect(regionCode('AU', 'nsw')).toBe('NSW');
    expect(regionCode('US', 'Calif.')).toBeNull();
    expect(regionCode('DE', 'Bayern')).toBeNull();
  });
});
