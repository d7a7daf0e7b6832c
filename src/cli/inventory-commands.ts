import type { Command } from 'commander';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { findTenantBySlug } from '../identity/tenants/index.ts';
import type { InventoryTables } from '../inventory/index.ts';
import { type Drift, verifyStock } from '../inventory/index.ts';
import { withSystem, withTenant } from '../platform/db/index.ts';
import type { Config } from '../platform/index.ts';
import { CliError, withDatabase } from './database-command.ts';

export type TenantDrift = { tenant: string; checked: number; drift: Drift[] };

/**
 * Rebuilds the stock of the tenants (every tenant unless one is named) from their ledgers and
 * returns, per tenant, how many items were checked and those that drifted.
 */
export async function verifyInventory(
  db: Kysely<InventoryTables>,
  tenants: { id: string; slug: string }[],
): Promise<TenantDrift[]> {
  const results: TenantDrift[] = [];
  for (const tenant of tenants) {
    const { checked, drift } = await withTenant(db, tenant.id, (trx) => verifyStock(trx));
    results.push({ tenant: tenant.slug, checked, drift });
  }
  return results;
}

/** `mercato inventory verify`: exit code 1 when any item's stock disagrees with its ledger. */
export function registerInventoryCommands(program: Command, config: () => Config): void {
  const inventory = program.command('inventory').description('stock, reservations and their ledger');
  inventory
    .command('verify')
    .description(
      "rebuild every item's on hand and reserved from the ledger and the active reservations, and report any drift (exit code 1)",
    )
    .option('--tenant <slug>', 'only this tenant (default: every tenant)')
    .action(async (opts: { tenant?: string }) => {
      await withDatabase(config(), async (ctx) => {
        const db = ctx.db.kysely as Kysely<InventoryTables>;
        let tenants: { id: string; slug: string }[];
        if (opts.tenant) {
          const tenant = await findTenantBySlug(ctx.db.kysely, opts.tenant);
          if (!tenant) throw new CliError(`no tenant with slug "${opts.tenant}"`);
          tenants = [{ id: tenant.id, slug: tenant.slug }];
        } else {
          tenants = await withSystem(db, async (trx) => {
            const { rows } = await sql<{ id: string; slug: string }>`
              select id, slug from identity.tenants order by slug`.execute(trx);
            return rows;
          });
        }
        const results = await verifyInventory(db, tenants);
        let drifted = 0;
        let checked = 0;
        for (const result of results) {
          checked += result.checked;
          for (const d of result.drift) {
            drifted += 1;
            console.log(
              `drift in tenant "${result.tenant}" item ${d.itemId} (variant ${d.variantId}): on hand ${d.onHand} vs ledger ${d.ledgerOnHand}, reserved ${d.reserved} vs ledger ${d.ledgerReserved} and active reservations ${d.activeReserved}`,
            );
          }
        }
        if (drifted > 0) {
          throw new CliError(`${drifted} of ${checked} item(s) drifted from their ledger`);
        }
        console.log(`${checked} item(s) in ${results.length} tenant(s) agree with their ledger`);
      });
    });
}
