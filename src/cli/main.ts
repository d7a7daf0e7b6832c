import { Command, Option } from 'commander';
import { DISPLAY_NAME, hashPassword } from '../identity/index.ts';
import { createTenant, findTenantBySlug } from '../identity/tenants/index.ts';
import { createUser, setPasswordByEmail } from '../identity/users/index.ts';
import { withTenant } from '../platform/db/index.ts';
import { AppError, ROLES } from '../platform/http/index.ts';
import { type Config, ConfigError, loadConfig } from '../platform/index.ts';
import { runServer } from '../server.ts';
import { checkAccountInput } from './account-input.ts';
import { registerCatalogCommands } from './catalog-commands.ts';
import { CliError, withDatabase } from './database-command.ts';
import { registerExceptionsCommands } from './exceptions-commands.ts';
import { registerFlashSalesCommands } from './flash-sales-commands.ts';
import { registerInventoryCommands } from './inventory-commands.ts';
import { startupFailure } from './startup-errors.ts';
import { registerWalCommands } from './wal-commands.ts';

function config(): Config {
  return loadConfig(process.env);
}

const program = new Command('mercato')
  .description(
    'Mercato: event-driven commerce backend. Reads the same environment as the server (see README).',
  )
  .showHelpAfterError();

program
  .command('start')
  .description('serve the API (embedded PGlite unless DATABASE_URL is set); applies migrations first')
  .action(async () => {
    const settings = config();
    try {
      await runServer(settings);
    } catch (error) {
      // Port or data directory in use, database missing or unreachable: one line, no stack.
      const line = startupFailure(error, settings);
      throw line ? new CliError(line) : error;
    }
  });

program
  .command('migrate')
  .description('apply pending database migrations and exit')
  .action(async () => {
    await withDatabase(config(), async (_ctx, _identity, applied) => {
      console.log(applied.length ? `applied ${applied.join(', ')}` : 'the database is up to date');
    });
  });

const tenants = program.command('tenants').description('manage tenants');
tenants
  .command('create')
  .description('create a tenant and its first admin user')
  .requiredOption('--slug <slug>', 'URL-safe id: lowercase letters, digits and dashes')
  .requiredOption('--name <name>', 'display name')
  .requiredOption('--admin-email <email>', "the tenant admin's email")
  .requiredOption('--admin-password <password>', "the tenant admin's password (12 to 128 characters)")
  .action(async (opts: { slug: string; name: string; adminEmail: string; adminPassword: string }) => {
    checkAccountInput({
      slug: ['--slug', opts.slug],
      name: ['--name', opts.name],
      email: ['--admin-email', opts.adminEmail],
      password: ['--admin-password', opts.adminPassword],
    });
    await withDatabase(config(), async (_ctx, identity) => {
      const input = {
        slug: opts.slug,
        name: opts.name,
        adminEmail: opts.adminEmail,
        adminPassword: opts.adminPassword,
      };
      // The tenant's system namespaces come in its creation transaction, as over HTTP.
      const { tenant, admin } = await createTenant(identity.deps.db, input, identity.deps.onTenantCreated);
      console.log(
        JSON.stringify({ ...tenant, admin: { id: admin.id, email: admin.email, role: admin.role } }, null, 2),
      );
    });
  });

const users = program.command('users').description('manage users');
users
  .command('create')
  .description('create a user in a tenant')
  .requiredOption('--tenant <slug>', 'tenant slug (use "platform" for a platform admin)')
  .requiredOption('--email <email>', 'email')
  .requiredOption('--password <password>', 'password (12 to 128 characters)')
  .option('--name <name>', 'display name', '')
  .addOption(new Option('--role <role>', 'role').choices([...ROLES]).default('customer'))
  .action(
    async (opts: {
      tenant: string;
      email: string;
      password: string;
      name: string;
      role: (typeof ROLES)[number];
    }) => {
      checkAccountInput({
        ...(opts.name !== '' ? { name: ['--name', opts.name] as [string, string] } : {}),
        email: ['--email', opts.email],
        password: ['--password', opts.password],
      });
      await withDatabase(config(), async (_ctx, identity) => {
        const { db } = identity.deps;
        const tenant = await findTenantBySlug(db, opts.tenant);
        if (!tenant) throw new CliError(`no tenant with slug "${opts.tenant}"`);
        const passwordHash = await hashPassword(opts.password);
        const user = await withTenant(db, tenant.id, (trx) =>
          createUser(trx, {
            tenantId: tenant.id,
            email: opts.email,
            passwordHash,
            // Without --name, the email (or its local part, when it is longer than a name may be).
            name:
              opts.name ||
              (opts.email.length <= DISPLAY_NAME.maxLength
                ? opts.email
                : opts.email.split('@')[0]!.slice(0, DISPLAY_NAME.maxLength)),
            role: opts.role,
          }),
        );
        console.log(JSON.stringify(user, null, 2));
      });
    },
  );

users
  .command('set-password')
  .description("set a user's password and sign out every session of theirs")
  .requiredOption('--tenant <slug>', 'tenant slug (use "platform" for a platform admin)')
  .requiredOption('--email <email>', 'email of the user')
  .requiredOption('--password <password>', 'the new password (12 to 128 characters)')
  .action(async (opts: { tenant: string; email: string; password: string }) => {
    await withDatabase(config(), async (_ctx, identity) => {
      const user = await setPasswordByEmail(identity.deps, opts);
      console.log(
        `password of ${user.email} in tenant "${opts.tenant}" set; every session of theirs is signed out`,
      );
    });
  });

registerWalCommands(program, config);
registerCatalogCommands(program, config);
registerInventoryCommands(program, config);
registerFlashSalesCommands(program, config);
registerExceptionsCommands(program, config);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof ConfigError) console.error(`Configuration error: ${error.message}`);
  else if (error instanceof CliError) console.error(error.message);
  else if (error instanceof AppError) {
    console.error(`${error.code}: ${error.message}`);
    // The fields a store refused, each on its line (the message only counts them).
    for (const e of error.extras.errors ?? []) console.error(`  ${e.pointer}: ${e.message}`);
  } else {
    // Any command: a database missing or unreachable is one line saying what to do, no stack.
    let line: string | undefined;
    try {
      line = startupFailure(error, config());
    } catch {
      line = undefined;
    }
    console.error(line ?? error);
  }
  process.exit(1);
}
