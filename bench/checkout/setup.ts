/**
 * The set-up of `npm run bench:checkout`: its knobs and databases, the bench shop on Mercato
 * (products with stock, a shipping option to Germany, German VAT), and the DBOS peer's server.
 * Mercato's process, the bench tenant and the database helpers are bench:commerce's
 * (bench/commerce/setup.ts), pointed at this bench's database.
 */
import type { Api } from '../commerce/api.ts';
import { prng } from '../commerce/generator.ts';
import { stockVariant } from '../commerce/hot-sku.ts';
import { createBenchTenant, SEED, type Server, spawnChild, urlOf } from '../commerce/setup.ts';

const env = process.env;
/** Whole checkouts timed one after another by a single client, after WARMUP_FLOWS untimed ones. */
export const FLOWS = Number(env['BENCH_FLOWS'] ?? 200);
export const WARMUP_FLOWS = Number(env['BENCH_WARMUP_FLOWS'] ?? 20);
/** Concurrent customers. */
export const CLIENTS = Number(env['BENCH_CLIENTS'] ?? 64);
/** Variants on sale (one product each); every checkout buys one unit of each of two drawn at random. */
export const VARIANTS = Number(env['BENCH_VARIANTS'] ?? 200);
/** On hand of each variant, on both sides: no checkout runs out. */
export const STOCK = Number(env['BENCH_STOCK'] ?? 1_000_000);
/** Carts prepared for the POST /orders-only run (default: from the whole-flow rate, see checkout.ts). */
export const SAGA_CARTS = env['BENCH_SAGA_CARTS'] ? Number(env['BENCH_SAGA_CARTS']) : undefined;
/** The DBOS peer's connections: its tables' pool and DBOS's system database pool (DBOS's default, 10). */
export const DBOS_POOL = Number(env['BENCH_DBOS_POOL'] ?? 10);
export const DBOS_SYSTEM_POOL = Number(env['BENCH_DBOS_SYSTEM_POOL'] ?? 10);
export const MERCATO_DB = 'mercato_bench_checkout';
export const DBOS_DB = 'dbos_bench_checkout';
export const dbosUrl = urlOf(DBOS_DB);
/** Unit price in EUR cents of variant i (both sides). */
export const priceOf = (i: number) => 1000 + (i % 50) * 100;

/** Two different variants out of `count`, drawn with a seeded PRNG per stream. */
export function pairs(stream: number, count = VARIANTS): () => [number, number] {
  const random = prng(SEED + stream);
  return () => {
    const a = Math.floor(random() * count);
    const b = (a + 1 + Math.floor(random() * (count - 1))) % count;
    return [a, b];
  };
}

export type Shop = { api: Api; tenantId: string; variantIds: string[]; shippingOptionId: string };

/** Creates the bench tenant and what its shop sells, as its admin, through the routes. */
export async function createShop(base: string): Promise<Shop> {
  const { api, tenantId } = await createBenchTenant(base);
  const option = await api.must<{ id: string }>('POST', '/api/v1/shipping-options', {
    name: 'DHL Paket',
    countries: ['DE'],
    prices: { EUR: 490 },
  });
  await api.must('POST', '/api/v1/tax-rates', { country: 'DE', rateBps: 1900, name: 'MwSt' });
  const variantIds: string[] = [];
  const one = async (i: number) => {
    const product = await api.must<{ id: string; variants: Array<{ id: string }> }>(
      'POST',
      '/api/v1/products',
      {
        title: `Checkout bench product ${i}`,
        status: 'active',
        variants: [{ sku: `CHK-${i}`, options: { size: 'M' }, prices: { EUR: priceOf(i) } }],
      },
    );
    const variantId = product.variants[0]!.id;
    variantIds[i] = variantId;
    // The inventory module may have made the item from the catalog's event already: then set it.
    const created = await api.call('POST', '/api/v1/inventory', {
      variantId,
      productId: product.id,
      onHand: STOCK,
    });
    if (created.status === 409) await stockVariant(api, variantId, STOCK);
    else if (created.status !== 201) {
      throw new Error(
        `POST /api/v1/inventory: ${created.status} ${JSON.stringify(created.body).slice(0, 300)}`,
      );
    }
  };
  for (let i = 0; i < VARIANTS; i += 8) {
    await Promise.all(Array.from({ length: Math.min(8, VARIANTS - i) }, (_, k) => one(i + k)));
  }
  return { api, tenantId, variantIds, shippingOptionId: option.id };
}

/** The DBOS peer (dbos-server.ts) as a child process on its own database. */
export const startDbos = (): Promise<Server> =>
  spawnChild(
    new URL('./dbos-server.ts', import.meta.url),
    {
      DATABASE_URL: dbosUrl,
      BENCH_DBOS_POOL: String(DBOS_POOL),
      BENCH_DBOS_SYSTEM_POOL: String(DBOS_SYSTEM_POOL),
      BENCH_VARIANTS: String(VARIANTS),
      BENCH_STOCK: String(STOCK),
    },
    /DBOS (http:\/\/\S+)/,
  );
