/**
 * Mercato with the issue-10 modules composed as docs/apis say (identity, wal, catalog, inventory,
 * cart), for `npm run bench:commerce` while src/server.ts does not wire them yet
 * (BENCH_SERVER=compose). Does what `mercato start` does for one process: migrate, enable the
 * request role, seed the demo, build the app, listen, start the modules; prints the same
 * `API http://…/api/v1` line; SIGTERM drains and stops.
 */
import { createCart } from '../../src/cart/index.ts';
import { createCatalog } from '../../src/catalog/index.ts';
import { seedDemo } from '../../src/identity/demo.ts';
import { createAddressBook, createIdentity } from '../../src/identity/index.ts';
import { createInventory } from '../../src/inventory/index.ts';
import { migrate } from '../../src/platform/db/index.ts';
import { buildApp } from '../../src/platform/http/index.ts';
import { closeContext, createContext, loadConfig, type MercatoModule } from '../../src/platform/index.ts';
import { createWal } from '../../src/wal/index.ts';

const config = loadConfig(process.env);
const ctx = await createContext(config);
const migrated = await migrate(ctx.db);
if (migrated.error) throw migrated.error;
await ctx.db.enableRequestRole();
const identity = await createIdentity(ctx);
const wal = await createWal(ctx);
const base = { events: wal.events, resolveTenant: identity.resolveTenant };
const catalog = await createCatalog(ctx, base);
const inventory = await createInventory(ctx, base);
const cart = await createCart(ctx, {
  ...base,
  catalog,
  inventory,
  addresses: createAddressBook(ctx.db.kysely as never),
});
const modules: MercatoModule[] = [identity, wal, catalog, inventory, cart];
// What each module gives every new tenant (the WAL: its system namespaces), as startTestApp does.
for (const module of modules) if (module.onTenantCreated) identity.addTenantHook(module.onTenantCreated);
if (config.demo) await seedDemo(identity.deps, config.demoPassword);
const app = await buildApp(ctx, { authenticate: identity.authenticate, modules });
const url = await app.listen({ host: '127.0.0.1', port: config.port });
for (const module of modules) await module.start?.();
console.log(`Mercato (bench composition)\n  API      ${url}/api/v1`);

const stop = async () => {
  await app.close();
  for (const module of [...modules].reverse()) await module.stop?.();
  await closeContext(ctx);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
