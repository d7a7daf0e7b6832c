import type { Command } from 'commander';
import { sql } from 'kysely';
import { createRedisGate, type FlashSalesDb, type Repair, reconcileCampaign } from '../flash-sales/index.ts';
import { withSystem } from '../platform/db/index.ts';
import type { Config } from '../platform/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import { CliError, withDatabase } from './database-command.ts';

/** `mercato flash-sales reconcile <id>`: the gate against the record, repaired, every repair printed. */
export function registerFlashSalesCommands(program: Command, config: () => Config): void {
  const flash = program.command('flash-sales').description('flash-sale campaigns');
  flash
    .command('reconcile <id>')
    .description(
      "compare a sale's gate (Redis) with its admissions in PostgreSQL, give back leaked units, correct the units left, and print every repair",
    )
    .action(async (id: string) => {
      if (!isUuid(id)) throw new CliError(`"${id}" is not a flash sale id (a UUID)`);
      const settings = config();
      if (!settings.redisUrl) {
        throw new CliError(
          'without REDIS_URL the gate lives inside the server process, which reconciles at start and every 30 s; set REDIS_URL to reconcile from here',
        );
      }
      await withDatabase(settings, async (ctx) => {
        const db = ctx.db.kysely as FlashSalesDb;
        const tenantId = await withSystem(db, async (trx) => {
          const { rows } = await sql<{ tenant_id: string }>`
            select tenant_id from flash_sales.campaigns where id = ${id.toLowerCase()}`.execute(trx);
          return rows[0]?.tenant_id;
        });
        if (!tenantId) throw new CliError(`no flash sale ${id}`);
        const gate = await createRedisGate({
          url: settings.redisUrl!,
          prefix: settings.redisPrefix,
          logger: ctx.logger,
        });
        try {
          const result = await reconcileCampaign({ db, gate, ctx }, tenantId, id.toLowerCase());
          console.log(
            `flash sale ${result.campaignId} (${result.status}): record ${result.record.admitted} of ${result.record.units} admitted, ${result.record.remaining} left; gate ${result.gate.loaded ? `${result.gate.remaining} left, ${result.gate.inFlight} in flight` : 'not loaded (rebuilt from the record on the next attempt)'}`,
          );
          for (const r of result.repairs) console.log(repairLine(r));
          if (result.repairs.length === 0) console.log('nothing to repair');
        } finally {
          await gate.close();
        }
      });
    });
}

/**
 * One repair as the operator reads it. A leaked unit is either an attempt the record never got
 * (its unit and key given back: a retry is a new attempt) or, `released`, an admission the record
 * released whose give-back to the gate was lost (its unit back, its key kept holding nothing).
 */
function repairLine(r: Repair): string {
  if (r.kind === 'remaining-corrected') {
    return `repaired: units left corrected from ${r.from} to ${r.to} (${r.missingKeys} admission(s) missing from the gate restored)`;
  }
  const units = `${r.quantity} unit(s) of customer ${r.customerId}`;
  return r.released
    ? `repaired: ${units} released back to the sale (key ${r.key}, order ${r.orderId} released in the record, its give-back to the gate lost; the key kept, holding none)`
    : `repaired: ${units} (key ${r.key}, order ${r.orderId} never recorded) given back`;
}
