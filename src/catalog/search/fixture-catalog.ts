/**
 * A realistic catalog, generated deterministically from a seed: categories in a tree and products
 * (phones, laptops, headphones, shoes, shirts, kitchen, books, sports) with tags, attributes,
 * variants and prices in EUR and USD, as the product routes take them. The search tests load
 * about 200 of them; the benchmark can generate 100,000 with the same families.
 */

export type FixtureCategory = { handle: string; name: string; parentHandle: string | null };
export type FixtureVariant = {
  sku: string;
  title?: string;
  options: Record<string, string>;
  prices: Record<string, number>;
};
export type FixtureProduct = {
  handle: string;
  title: string;
  description: string;
  status: 'draft' | 'active' | 'archived';
  tags: string[];
  attributes: Record<string, unknown>;
  categoryHandles: string[];
  variants: FixtureVariant[];
};

export const FIXTURE_CATEGORIES: FixtureCategory[] = [
  { handle: 'electronics', name: 'Electronics', parentHandle: null },
  { handle: 'phones', name: 'Phones', parentHandle: 'electronics' },
  { handle: 'computers', name: 'Computers', parentHandle: 'electronics' },
  { handle: 'laptops', name: 'Laptops', parentHandle: 'computers' },
  { handle: 'audio', name: 'Audio', parentHandle: 'electronics' },
  { handle: 'apparel', name: 'Apparel', parentHandle: null },
  { handle: 'shoes', name: 'Shoes', parentHandle: 'apparel' },
  { handle: 'shirts', name: 'Shirts', parentHandle: 'apparel' },
  { handle: 'home', name: 'Home', parentHandle: null },
  { handle: 'kitchen', name: 'Kitchen', parentHandle: 'home' },
  { handle: 'books', name: 'Books', parentHandle: null },
  { handle: 'sports', name: 'Sports', parentHandle: null },
];

type Family = {
  category: string;
  tags: string[];
  /** [brand, model] pairs. */
  models: Array<[string, string]>;
  noun: string;
  /** Price range in major units. */
  price: [number, number];
  option: { name: string; values: string[] };
  colours: string[];
  features: string[];
  attributes: (brand: string, pick: <T>(list: T[]) => T) => Record<string, unknown>;
};

const FAMILIES: Family[] = [
  {
    category: 'phones',
    tags: ['smartphone', '5g', 'mobile'],
    models: [
      ['Apple', 'iPhone 15'],
      ['Apple', 'iPhone 15 Pro'],
      ['Apple', 'iPhone 14'],
      ['Samsung', 'Galaxy S24'],
      ['Samsung', 'Galaxy A55'],
      ['Google', 'Pixel 8'],
      ['Google', 'Pixel 8a'],
      ['OnePlus', '12'],
      ['Xiaomi', 'Redmi Note 13'],
      ['Nokia', 'G42'],
    ],
    noun: 'Smartphone',
    price: [199, 1299],
    option: { name: 'storage', values: ['128GB', '256GB', '512GB'] },
    colours: ['Black', 'White', 'Blue', 'Titanium'],
    features: [
      'an OLED display',
      'a triple camera',
      'all-day battery life',
      'fast wireless charging',
      'water resistance',
    ],
    attributes: (brand, pick) => ({ brand, screen: pick(['6.1 in', '6.4 in', '6.7 in']), network: '5G' }),
  },
  {
    category: 'laptops',
    tags: ['laptop', 'notebook', 'computer'],
    models: [
      ['Apple', 'MacBook Air 13'],
      ['Apple', 'MacBook Pro 14'],
      ['Lenovo', 'ThinkPad X1 Carbon'],
      ['Lenovo', 'IdeaPad Slim 5'],
      ['Dell', 'XPS 13'],
      ['Dell', 'Inspiron 15'],
      ['HP', 'Spectre x360'],
      ['HP', 'Pavilion 14'],
      ['ASUS', 'ZenBook 14'],
      ['Acer', 'Swift Go'],
    ],
    noun: 'Laptop',
    price: [499, 2999],
    option: { name: 'memory', values: ['8GB', '16GB', '32GB'] },
    colours: ['Silver', 'Space Grey', 'Black'],
    features: [
      'a backlit keyboard',
      'a 14-hour battery',
      'a fast SSD',
      'a bright IPS screen',
      'Thunderbolt ports',
    ],
    attributes: (brand, pick) => ({
      brand,
      screen: pick(['13 in', '14 in', '15.6 in']),
      os: brand === 'Apple' ? 'macOS' : 'Windows',
    }),
  },
  {
    category: 'audio',
    tags: ['headphones', 'wireless', 'bluetooth'],
    models: [
      ['Sony', 'WH-1000XM5'],
      ['Bose', 'QuietComfort Ultra'],
      ['Apple', 'AirPods Pro'],
      ['Sennheiser', 'Momentum 4'],
      ['JBL', 'Tune 770NC'],
      ['Beats', 'Studio Pro'],
    ],
    noun: 'Wireless Headphones',
    price: [79, 449],
    option: { name: 'colour', values: ['Black', 'White', 'Blue'] },
    colours: ['Black'],
    features: [
      'active noise cancelling',
      '30 hours of playback',
      'a comfortable fit',
      'multipoint Bluetooth',
    ],
    attributes: (brand) => ({ brand, type: 'over-ear', connectivity: 'Bluetooth' }),
  },
  {
    category: 'shoes',
    tags: ['running', 'sneakers', 'footwear'],
    models: [
      ['Nike', 'Air Zoom Pegasus 40'],
      ['Nike', 'Air Max 90'],
      ['Adidas', 'Ultraboost Light'],
      ['Adidas', 'Samba OG'],
      ['New Balance', '1080v13'],
      ['ASICS', 'Gel-Kayano 30'],
      ['Hoka', 'Clifton 9'],
      ['Brooks', 'Ghost 15'],
    ],
    noun: 'Running Shoes',
    price: [59, 219],
    option: { name: 'size', values: ['40', '41', '42', '43', '44', '45'] },
    colours: ['Black', 'White', 'Red', 'Navy'],
    features: [
      'responsive cushioning',
      'a breathable mesh upper',
      'a durable rubber outsole',
      'a secure heel',
    ],
    attributes: (brand, pick) => ({ brand, gender: pick(['men', 'women', 'unisex']), material: 'mesh' }),
  },
  {
    category: 'shirts',
    tags: ['cotton', 'menswear', 'casual'],
    models: [
      ['Uniqlo', 'Oxford'],
      ['Levi’s', 'Classic Denim'],
      ['Ralph Lauren', 'Polo'],
      ['H&M', 'Linen'],
      ['Patagonia', 'Organic Cotton T-Shirt'],
      ['Tommy Hilfiger', 'Slim Fit'],
    ],
    noun: 'Shirt',
    price: [15, 129],
    option: { name: 'size', values: ['S', 'M', 'L', 'XL'] },
    colours: ['White', 'Light Blue', 'Black', 'Olive'],
    features: ['soft organic cotton', 'a tailored fit', 'a button-down collar', 'easy care fabric'],
    attributes: (brand, pick) => ({
      brand,
      material: pick(['cotton', 'linen', 'denim']),
      fit: pick(['slim', 'regular']),
    }),
  },
  {
    category: 'kitchen',
    tags: ['kitchen', 'cookware', 'home'],
    models: [
      ['Le Creuset', 'Cast Iron Skillet'],
      ['Victorinox', 'Chef’s Knife'],
      ['De’Longhi', 'Espresso Machine'],
      ['Vitamix', 'Blender'],
      ['Smeg', 'Electric Kettle'],
      ['KitchenAid', 'Stand Mixer'],
      ['Tefal', 'Non-Stick Frying Pan'],
    ],
    noun: '',
    price: [25, 699],
    option: { name: 'colour', values: ['Red', 'Cream', 'Black', 'Steel'] },
    colours: ['Steel'],
    features: [
      'even heat distribution',
      'a dishwasher-safe finish',
      'a lifetime warranty',
      'professional quality',
    ],
    attributes: (brand, pick) => ({ brand, material: pick(['cast iron', 'stainless steel', 'aluminium']) }),
  },
  {
    category: 'books',
    tags: ['book', 'paperback', 'reading'],
    models: [
      ['Frank Herbert', 'Dune'],
      ['George Orwell', 'Nineteen Eighty-Four'],
      ['Jane Austen', 'Pride and Prejudice'],
      ['Yuval Noah Harari', 'Sapiens'],
      ['Donald Knuth', 'The Art of Computer Programming'],
      ['Ursula K. Le Guin', 'The Left Hand of Darkness'],
      ['Andy Weir', 'Project Hail Mary'],
    ],
    noun: '',
    price: [9, 79],
    option: { name: 'format', values: ['Paperback', 'Hardcover', 'Ebook'] },
    colours: [''],
    features: [
      'a new introduction',
      'a classic of its genre',
      'a bestselling story',
      'an unforgettable journey',
    ],
    attributes: (brand, pick) => ({ author: brand, language: pick(['English', 'German', 'French']) }),
  },
  {
    category: 'sports',
    tags: ['fitness', 'training', 'outdoor'],
    models: [
      ['Manduka', 'Yoga Mat'],
      ['Bowflex', 'Adjustable Dumbbells'],
      ['Garmin', 'Forerunner 265 Watch'],
      ['Wilson', 'Tennis Racket'],
      ['Osprey', 'Hiking Backpack'],
      ['TRX', 'Suspension Trainer'],
    ],
    noun: '',
    price: [19, 499],
    option: { name: 'colour', values: ['Black', 'Purple', 'Green'] },
    colours: [''],
    features: ['a non-slip grip', 'a lightweight build', 'years of use', 'travel-friendly design'],
    attributes: (brand) => ({ brand, sport: 'fitness' }),
  },
];

/** mulberry32: a small deterministic PRNG, so a seed always yields the same catalog. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const slug = (text: string) =>
  text
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

/**
 * count products cycling through the families; about 6% draft and 3% archived (never index 0 of
 * a family's first round, so every model has an active product). `prefix` makes SKUs and handles
 * unique across catalogs.
 */
export function generateCatalog(options: {
  count: number;
  seed?: number;
  prefix?: string;
}): FixtureProduct[] {
  const rnd = random(options.seed ?? 42);
  const pick = <T>(list: T[]): T => list[Math.floor(rnd() * list.length)]!;
  const prefix = options.prefix ?? '';
  const products: FixtureProduct[] = [];
  for (let i = 0; i < options.count; i++) {
    const family = FAMILIES[i % FAMILIES.length]!;
    const round = Math.floor(i / FAMILIES.length);
    const [brand, model] = family.models[round % family.models.length]!;
    const colour = pick(family.colours);
    const edition = Math.floor(round / family.models.length);
    const name = [brand === model ? '' : brand, model, family.noun].filter(Boolean).join(' ');
    const title = [name, colour, edition > 0 ? `(${2020 + edition})` : ''].filter(Boolean).join(' ');
    const base = Math.round(family.price[0] + rnd() * (family.price[1] - family.price[0]));
    const variants = family.option.values
      .slice(0, 1 + Math.floor(rnd() * family.option.values.length))
      .map((value, v) => {
        const eur = (base + v * Math.round(base * 0.1)) * 100 - 1;
        return {
          sku: `${prefix}${slug(brand).slice(0, 4).toUpperCase()}-${i}-${v}`,
          options: { [family.option.name]: value },
          prices: { EUR: eur, USD: Math.round(eur * 1.08) },
        };
      });
    const status = round > 0 && rnd() < 0.06 ? 'draft' : round > 0 && rnd() < 0.03 ? 'archived' : 'active';
    const features = [pick(family.features), pick(family.features)];
    products.push({
      handle: `${prefix}${slug(title)}-${i}`,
      title,
      description: `The ${name} by ${brand} comes with ${features[0]} and ${features[1]}. ${
        colour ? `Finished in ${colour.toLowerCase()}. ` : ''
      }Free delivery and 30-day returns.`,
      status,
      tags: [...family.tags.slice(0, 2 + Math.floor(rnd() * 2)), ...(rnd() < 0.2 ? ['sale'] : [])],
      attributes: { ...family.attributes(brand, pick), ...(colour ? { colour } : {}) },
      categoryHandles: [family.category],
      variants,
    });
  }
  return products;
}
