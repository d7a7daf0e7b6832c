import type { FastifyInstance } from 'fastify';

/**
 * The demo shop's catalog, stock, shipping and tax, seeded through the public API as its admin
 * would (so the demo exercises the same validation and events as any tenant): five categories,
 * a dozen products with variants priced in USD and EUR, stock at the default location, flat-rate
 * shipping to the US, GB and the EU's largest markets, and sales tax or VAT for them.
 */
type DemoProduct = {
  title: string;
  category: string;
  tags: string[];
  description: string;
  attributes: Record<string, string>;
  variants: { sku: string; options: Record<string, string>; usd: number; eur: number; stock: number }[];
};

const CATEGORIES: { name: string; handle: string; parent?: string }[] = [
  { name: 'Electronics', handle: 'electronics' },
  { name: 'Phones', handle: 'phones', parent: 'electronics' },
  { name: 'Laptops', handle: 'laptops', parent: 'electronics' },
  { name: 'Apparel', handle: 'apparel' },
  { name: 'Shoes', handle: 'shoes', parent: 'apparel' },
  { name: 'T-shirts', handle: 't-shirts', parent: 'apparel' },
  { name: 'Kitchen', handle: 'kitchen' },
];

const sizes = (sku: string, usd: number, eur: number, stock: number, list: string[]) =>
  list.map((size) => ({ sku: `${sku}-${size}`, options: { size }, usd, eur, stock }));

const PRODUCTS: DemoProduct[] = [
  {
    title: 'Aurora X2 Smartphone',
    category: 'phones',
    tags: ['5g', 'android'],
    description: 'A 6.5-inch OLED smartphone with a 50 MP camera and two-day battery life.',
    attributes: { brand: 'Aurora', colour: 'black' },
    variants: [
      { sku: 'AUR-X2-128', options: { storage: '128 GB' }, usd: 49900, eur: 46900, stock: 25 },
      { sku: 'AUR-X2-256', options: { storage: '256 GB' }, usd: 59900, eur: 55900, stock: 10 },
    ],
  },
  {
    title: 'Nimbus Mini Phone',
    category: 'phones',
    tags: ['compact', 'android'],
    description: 'A compact 5.4-inch phone that fits any pocket, with wireless charging.',
    attributes: { brand: 'Nimbus', colour: 'blue' },
    variants: [{ sku: 'NIM-MINI-64', options: { storage: '64 GB' }, usd: 29900, eur: 27900, stock: 3 }],
  },
  {
    title: 'Forge 14 Laptop',
    category: 'laptops',
    tags: ['ultrabook', 'linux'],
    description: 'A 14-inch aluminium ultrabook with 16 GB of memory and an all-day battery.',
    attributes: { brand: 'Forge', colour: 'silver' },
    variants: [
      { sku: 'FRG-14-16', options: { memory: '16 GB' }, usd: 129900, eur: 119900, stock: 8 },
      { sku: 'FRG-14-32', options: { memory: '32 GB' }, usd: 159900, eur: 149900, stock: 4 },
    ],
  },
  {
    title: 'Forge 16 Pro Laptop',
    category: 'laptops',
    tags: ['workstation'],
    description: 'A 16-inch workstation laptop with a dedicated graphics card for creators.',
    attributes: { brand: 'Forge', colour: 'graphite' },
    variants: [{ sku: 'FRG-16-PRO', options: { memory: '32 GB' }, usd: 219900, eur: 209900, stock: 2 }],
  },
  {
    title: 'Trailblazer Running Shoe',
    category: 'shoes',
    tags: ['running', 'trail'],
    description: 'A grippy trail running shoe with a cushioned midsole and a waterproof upper.',
    attributes: { brand: 'Stride', colour: 'red' },
    variants: sizes('STR-TRAIL', 12900, 11900, 12, ['40', '41', '42', '43', '44']),
  },
  {
    title: 'City Walker Sneaker',
    category: 'shoes',
    tags: ['casual', 'leather'],
    description: 'A white leather sneaker for everyday walking in the city.',
    attributes: { brand: 'Stride', colour: 'white' },
    variants: sizes('STR-CITY', 8900, 8400, 20, ['39', '40', '41', '42', '43']),
  },
  {
    title: 'Organic Cotton T-shirt',
    category: 't-shirts',
    tags: ['organic', 'cotton'],
    description: 'A soft crew-neck T-shirt of organic cotton, cut for a relaxed fit.',
    attributes: { brand: 'Loom', material: 'cotton', colour: 'green' },
    variants: sizes('LOOM-TEE-GRN', 2500, 2300, 40, ['S', 'M', 'L', 'XL']),
  },
  {
    title: 'Merino Wool T-shirt',
    category: 't-shirts',
    tags: ['merino', 'travel'],
    description: 'A light merino wool T-shirt that stays fresh on long trips.',
    attributes: { brand: 'Loom', material: 'merino', colour: 'navy' },
    variants: sizes('LOOM-MER-NVY', 6500, 5900, 15, ['S', 'M', 'L']),
  },
  {
    title: 'Cast Iron Skillet',
    category: 'kitchen',
    tags: ['cookware', 'cast-iron'],
    description: 'A pre-seasoned 26 cm cast iron skillet for searing, baking and frying.',
    attributes: { brand: 'Hearth', material: 'cast iron' },
    variants: [{ sku: 'HRT-SKIL-26', options: { size: '26 cm' }, usd: 3900, eur: 3600, stock: 30 }],
  },
  {
    title: 'Pour-over Coffee Kettle',
    category: 'kitchen',
    tags: ['coffee', 'kettle'],
    description: 'A gooseneck kettle with a thermometer for precise pour-over coffee.',
    attributes: { brand: 'Hearth', material: 'steel' },
    variants: [{ sku: 'HRT-KETTLE', options: {}, usd: 4900, eur: 4500, stock: 0 }],
  },
];

type Call = (method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown) => Promise<unknown>;

function caller(app: FastifyInstance, token: string): Call {
  return async (method, url, body) => {
    const res = await app.inject({
      method,
      url: `/api/v1${url}`,
      headers: { authorization: `Bearer ${token}` },
      ...(body === undefined ? {} : { payload: body as object }),
    });
    if (res.statusCode >= 300)
      throw new Error(`demo store: ${method} ${url} answered ${res.statusCode}: ${res.body}`);
    return res.json();
  };
}

/** Seeds the demo shop's store as its admin (admin@demo.test with `password`). Run once, right after the demo tenant was made. */
export async function seedDemoStore(app: FastifyInstance, password: string): Promise<void> {
  const login = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { tenant: 'demo', email: 'admin@demo.test', password },
  });
  if (login.statusCode !== 200)
    throw new Error(`demo store: cannot sign in as the demo admin: ${login.body}`);
  const call = caller(app, login.json().accessToken);
  const categoryIds = new Map<string, string>();
  for (const c of CATEGORIES) {
    const parentId = c.parent ? categoryIds.get(c.parent) : undefined;
    const made = (await call('POST', '/categories', { name: c.name, handle: c.handle, parentId })) as {
      id: string;
    };
    categoryIds.set(c.handle, made.id);
  }
  for (const p of PRODUCTS) {
    const product = (await call('POST', '/products', {
      title: p.title,
      description: p.description,
      status: 'active',
      categoryHandles: [p.category],
      tags: p.tags,
      attributes: p.attributes,
      variants: p.variants.map((v) => ({
        sku: v.sku,
        options: v.options,
        prices: { USD: v.usd, EUR: v.eur },
      })),
    })) as { id: string; variants: { id: string; sku: string }[] };
    for (const v of product.variants) {
      const stock = p.variants.find((d) => d.sku === v.sku)?.stock ?? 0;
      await setStock(call, { variantId: v.id, productId: product.id, sku: v.sku }, stock);
    }
  }
  await call('POST', '/shipping-options', {
    name: 'Standard (3–5 days)',
    countries: ['US', 'GB', 'DE', 'FR'],
    prices: { USD: 599, EUR: 499 },
  });
  await call('POST', '/shipping-options', {
    name: 'Express (1 day)',
    countries: ['US', 'GB'],
    prices: { USD: 1999, EUR: 1799 },
  });
  await call('POST', '/tax-rates', { country: 'GB', rateBps: 2000, name: 'UK VAT' });
  await call('POST', '/tax-rates', { country: 'DE', rateBps: 1900, name: 'MwSt' });
  await call('POST', '/tax-rates', { country: 'FR', rateBps: 2000, name: 'TVA' });
  await call('POST', '/tax-rates', {
    country: 'US',
    region: 'CA',
    rateBps: 725,
    name: 'California sales tax',
  });
}

/** Stock of a new variant: its item is made here, or by inventory's product-events subscriber if that came first. */
async function setStock(
  call: Call,
  variant: { variantId: string; productId: string; sku: string },
  onHand: number,
): Promise<void> {
  try {
    await call('POST', '/inventory', { ...variant, onHand, lowStockThreshold: Math.min(3, onHand) });
  } catch {
    const found = (await call('GET', `/inventory?variantId=${variant.variantId}`)) as {
      items: { id: string }[];
    };
    const item = found.items[0];
    if (!item) throw new Error(`demo store: no stock row for ${variant.sku}`);
    await call('PUT', `/inventory/${item.id}/stock`, { set: onHand, reason: 'demo stock' });
  }
}
