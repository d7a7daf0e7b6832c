import type { Command } from 'commander';
import type { Kysely } from 'kysely';
import {
  type ExceptionsDb,
  type PurgeProgress,
  purgeExceptions,
  resealSecrets,
} from '../exceptions/index.ts';
import { findTenantBySlug } from '../identity/tenants/index.ts';
import { type Config, secretBoxOf } from '../platform/index.ts';
import { resealTargets } from '../wal/namespaces/sealed-targets.ts';
import type { WalTables } from '../wal/tables.ts';
import { CliError, withDatabase } from './database-command.ts';

/** `--older-than 30d` (or `30`): whole days, 0 to 36,500. */
export function parseDays(text: string): number {
  const match = /^(\d{1,5})d?$/.exec(text.trim());
  const days = match ? Number(match[1]) : Number.NaN;
  if (!Number.isInteger(days) || days > 36_500) {
    throw new CliError(`--older-than takes whole days, such as 30d (0 to 36500), not "${text}"`);
  }
  return days;
}

/**
 * Progress as a bar redrawn in place on a terminal, or a plain line per batch otherwise (a log,
 * a pipe): twenty lines of our own rather than a dependency.
 */
export function progressReporter(out: NodeJS.WriteStream = process.stdout): {
  progress: PurgeProgress;
  done(): void;
} {
  const width = 30;
  let drawn = false;
  return {
    progress(done, total, batch) {
      if (out.isTTY) {
        const filled = total === 0 ? width : Math.round((done / total) * width);
        const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
        out.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${percent}% ${done}/${total}`);
        drawn = true;
      } else if (batch) {
        const what = batch.archived > 0 ? `archived ${batch.archived}` : `deleted ${batch.deleted} archived`;
        out.write(`tenant ${batch.tenantId}: ${what} (${done}/${total})\n`);
      }
    },
    done() {
      if (drawn) out.write('\n');
    },
  };
}

/**
 * `mercato exceptions purge`: retention by hand, with a progress bar; `mercato exceptions
 * reseal-secrets`: every secret tenants store (the sources' secrets, the WAL's HTTP target secrets
 * and credential headers) sealed again under the current key after a rotation.
 */
export function registerExceptionsCommands(program: Command, config: () => Config): void {
  const exceptions = program.command('exceptions').description('the interface exception collector');
  exceptions
    .command('purge')
    .description(
      "archive resolved and closed exceptions older than --older-than (default: each tenant's archiveAfterDays), then delete archived ones past each tenant's deleteAfterDays",
    )
    .option(
      '--older-than <days>',
      'archive what was last changed this long ago, e.g. 30d (overrides the settings)',
    )
    .option('--tenant <slug>', 'only this tenant (default: every tenant)')
    .option('--dry-run', 'count what would be archived and deleted; change nothing')
    .action(async (opts: { olderThan?: string; tenant?: string; dryRun?: boolean }) => {
      const olderThanDays = opts.olderThan === undefined ? undefined : parseDays(opts.olderThan);
      await withDatabase(config(), async (ctx) => {
        let tenantId: string | undefined;
        if (opts.tenant !== undefined) {
          const tenant = await findTenantBySlug(ctx.db.kysely, opts.tenant);
          if (!tenant) throw new CliError(`no tenant with slug "${opts.tenant}"`);
          tenantId = tenant.id;
        }
        const reporter = progressReporter();
        const result = await purgeExceptions(
          ctx.db.kysely as ExceptionsDb,
          { olderThanDays, tenantId, dryRun: opts.dryRun === true },
          reporter.progress,
        );
        reporter.done();
        for (const t of result.tenants) {
          console.log(
            `tenant "${t.slug}": ${t.archived} exception(s) archived, ${t.deleted} archived record(s) deleted`,
          );
        }
        const verb = result.dryRun ? 'would be' : 'were';
        console.log(
          `${result.archived} exception(s) ${verb} archived and ${result.deleted} archived record(s) ${verb} deleted${result.dryRun ? ' (dry run: nothing changed)' : ''}`,
        );
        // The others were purged; a tenant whose step failed is named, and the command exits 1.
        for (const f of result.failed) console.error(`tenant ${f.tenantId}: the purge failed: ${f.error}`);
        if (result.failed.length > 0)
          throw new CliError(
            `the purge failed for ${result.failed.length} tenant(s); run it again once fixed`,
          );
      });
    });
  exceptions
    .command('reseal-secrets')
    .description(
      "seal every stored secret again under MERCATO_SECRETS_KEY, after a rotation (the old key in MERCATO_SECRETS_KEY_PREVIOUS): the exception sources' credentials and the WAL's HTTP target secrets and credential headers; exits 1 when some cannot be opened",
    )
    .action(async () => {
      await withDatabase(config(), async (ctx) => {
        const result = await resealSecrets(ctx, ctx.db.kysely as ExceptionsDb);
        console.log(
          `${result.resealed} source(s) sealed again under the current key, ${result.current} already under it`,
        );
        const wal = await resealTargets(ctx.db.kysely as Kysely<WalTables>, secretBoxOf(ctx));
        console.log(
          `${wal.resealed} WAL namespace(s) sealed again under the current key, ${wal.current} already under it`,
        );
        for (const u of wal.unreadable) {
          console.error(
            `tenant ${u.tenantId}, WAL namespace ${u.namespace}: a target secret sealed under an unknown key or altered; send the target again`,
          );
        }
        if (wal.unreadable.length > 0 && result.unreadable.length === 0) {
          throw new CliError(
            `${wal.unreadable.length} WAL namespace(s) could not be opened with the current or a previous key: keep MERCATO_SECRETS_KEY_PREVIOUS until their targets are sent again`,
          );
        }
        if (result.unreadable.length > 0) {
          for (const u of result.unreadable) {
            console.error(
              `tenant ${u.tenantId}, ${u.interfaceType}: sealed under an unknown key or altered; save it again`,
            );
          }
          throw new CliError(
            `${result.unreadable.length} source(s) could not be opened with the current or a previous key: keep MERCATO_SECRETS_KEY_PREVIOUS until they are saved again`,
          );
        }
      });
    });
}
