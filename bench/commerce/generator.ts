/**
 * A deterministic catalog for `npm run bench:commerce`: the same seed gives the same products,
 * variants, prices and query strings on every run and machine. Titles read like a shop's
 * ("Northwind Rugged Leather Hiking Boots"), descriptions are a few sentences built from the same
 * words, and every product sits in a leaf of a three-level category tree.
 */
import {
  ADJECTIVES,
  BRANDS,
  CARE,
  CITIES,
  COLOURS,
  EXTRA_TAGS,
  FEATURES,
  PRODUCT_TYPES,
  type ProductType,
  QUALITIES,
  SENTENCES,
  SIZES,
} from './vocabulary.ts';

/** mulberry32: a small, fast, seeded PRNG (uniform in [0, 1)). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const between = (random: Random, [low, high]: [number, number]) =>
  low + Math.floor(random() * (high - low + 1));

export type GeneratedVariant = {
  sku: string;
  title: string;
  options: Record<string, string>;
  /** Minor units per ISO 4217 currency. */
  prices: Record<string, number>;
  compareAtPrices: Record<string, number>;
  weightGrams: number;
  barcode: string;
};

export type GeneratedProduct = {
  handle: string;
  title: string;
  description: string;
  brand: string;
  type: string;
  material: string;
  colour: string;
  adjective: string;
  /** Root-to-leaf category names. */
  categoryPath: string[];
  tags: string[];
  attributes: Record<string, string>;
  variants: GeneratedVariant[];
};

/** The category tree as [path] from root to every node, parents first (for creating them in order). */
export function categoryPaths(): string[][] {
  const seen = new Map<string, string[]>();
  for (const type of PRODUCT_TYPES) {
    for (let depth = 1; depth <= type.category.length; depth++) {
      const path = type.category.slice(0, depth);
      seen.set(path.join(' > '), path);
    }
  }
  return [...seen.values()].sort((a, b) => a.length - b.length);
}

export const slugify = (text: string) =>
  text
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');

const capitalise = (text: string) => text.replace(/\b[a-z]/g, (c) => c.toUpperCase());

/** EAN-13 with a valid check digit. */
function ean13(random: Random): string {
  let digits = '40';
  for (let i = 0; i < 10; i++) digits += Math.floor(random() * 10);
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += Number(digits[i]) * (i % 2 === 0 ? 1 : 3);
  return digits + ((10 - (sum % 10)) % 10);
}

function describe(random: Random, p: Omit<GeneratedProduct, 'description' | 'variants'>): string {
  const count = 3 + Math.floor(random() * 3);
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(Math.floor(random() * SENTENCES.length));
  const fill: Record<string, string> = {
    brand: p.brand,
    adjective: p.adjective.toLowerCase(),
    type: p.type.toLowerCase(),
    material: p.material,
    colour: p.colour,
    city: pick(random, CITIES),
    category: p.categoryPath.at(-1)!.toLowerCase(),
    care: pick(random, CARE),
    quality: pick(random, QUALITIES),
    quality2: pick(random, QUALITIES),
    rating: (4 + random()).toFixed(1),
    feature: pick(random, FEATURES),
  };
  return [...chosen]
    .sort((a, b) => a - b)
    .map((i) => SENTENCES[i]!.replace(/\{(\w+)\}/g, (_, key: string) => fill[key] ?? key))
    .join(' ');
}

function variantsOf(random: Random, type: ProductType, index: number, colour: string, base: number) {
  const sizes = SIZES[type.sizes];
  const colours = random() < 0.3 ? [colour, pick(random, COLOURS)] : [colour];
  if (colours[1] === colours[0]) colours.pop();
  const sizeCount = sizes.length === 0 ? 1 : 1 + Math.floor(random() * Math.min(3, sizes.length));
  const firstSize = Math.floor(random() * Math.max(1, sizes.length - sizeCount + 1));
  const variants: GeneratedVariant[] = [];
  const compare = random() < 0.15;
  for (const c of colours) {
    for (let s = 0; s < sizeCount; s++) {
      const size = sizes[firstSize + s];
      const options: Record<string, string> = size ? { size, colour: c } : { colour: c };
      const price = base + s * 500;
      variants.push({
        sku: `BN-${index.toString(36).toUpperCase().padStart(4, '0')}-${variants.length + 1}`,
        title: Object.values(options).map(capitalise).join(' / '),
        options,
        prices: { EUR: price, USD: Math.round((price * 1.08) / 100) * 100 - 1 },
        compareAtPrices: compare ? { EUR: Math.round(price * 1.25) } : {},
        weightGrams: 100 + Math.floor(random() * 2400),
        barcode: ean13(random),
      });
    }
  }
  return variants;
}

/** Product number `index` of the catalog seeded with `seed` (independent of the others). */
export function generateProduct(seed: number, index: number): GeneratedProduct {
  const random = prng((seed * 2654435761) ^ (index * 40503 + 12345));
  const type = pick(random, PRODUCT_TYPES);
  const brand = pick(random, BRANDS);
  const adjective = pick(random, ADJECTIVES);
  const material = pick(random, type.materials);
  const colour = pick(random, COLOURS);
  const withColour = random() < 0.25;
  const title = [
    brand,
    adjective,
    capitalise(material),
    type.name,
    withColour ? `in ${capitalise(colour)}` : '',
  ]
    .filter(Boolean)
    .join(' ');
  const tags = [...type.tags];
  if (random() < 0.4) tags.push(pick(random, EXTRA_TAGS));
  const attributes: Record<string, string> = { brand, material };
  for (const [name, values] of Object.entries(type.attributes)) attributes[name] = pick(random, values);
  const partial = {
    handle: `${slugify(title)}-${index.toString(36)}`,
    title,
    brand,
    type: type.name,
    material,
    colour,
    adjective,
    categoryPath: type.category,
    tags,
    attributes,
  };
  const base = Math.round(between(random, type.price) / 100) * 100 - 1;
  return {
    ...partial,
    description: describe(random, partial),
    variants: variantsOf(random, type, index, colour, base),
  };
}

/** Query strings for the search runs, drawn from generated products so each finds something. */
export type QuerySets = { plain: string[]; typo: string[]; prefix: string[]; facet: FacetQuery[] };
export type FacetQuery = { q: string; category: string[]; minPrice: number; maxPrice: number };

/** One edit a shopper makes: two letters swapped, one dropped or one doubled (never the first letter). */
export function typoOf(random: Random, word: string): string {
  const i = 1 + Math.floor(random() * (word.length - 2));
  const kind = Math.floor(random() * 3);
  if (kind === 0 && word[i] !== word[i + 1])
    return word.slice(0, i) + word[i + 1] + word[i] + word.slice(i + 2);
  if (kind === 1) return word.slice(0, i) + word.slice(i + 1);
  return word.slice(0, i) + word[i] + word.slice(i);
}

export function querySets(seed: number, products: number, size = 200): QuerySets {
  const random = prng(seed ^ 0x5eed);
  const sample = () => generateProduct(seed, Math.floor(random() * products));
  const lastWord = (text: string) => text.split(' ').at(-1)!.toLowerCase();
  const plain: string[] = [];
  const typo: string[] = [];
  const prefix: string[] = [];
  const facet: FacetQuery[] = [];
  for (let i = 0; i < size; i++) {
    const p = sample();
    const forms = [
      p.type.toLowerCase(),
      `${p.material} ${lastWord(p.type)}`,
      `${p.brand.toLowerCase()} ${lastWord(p.type)}`,
      `${p.adjective.toLowerCase()} ${p.type.toLowerCase()}`,
      `${p.colour} ${lastWord(p.type)}`,
      p.brand.toLowerCase(),
    ];
    const q = pick(random, forms);
    plain.push(q);
    const words = q.split(' ');
    const longest = words.reduce((a, b) => (b.length > a.length ? b : a));
    const misspelt = longest.length >= 5 ? typoOf(random, longest) : `${longest}${longest.at(-1)}`;
    typo.push(words.map((w) => (w === longest ? misspelt : w)).join(' '));
    const word = pick(random, [
      lastWord(p.type),
      p.brand.toLowerCase().split(' ')[0]!,
      p.material.split(' ')[0]!,
    ]);
    prefix.push(word.slice(0, Math.min(word.length, 3 + Math.floor(random() * 3))));
    const [low, high] = PRODUCT_TYPES.find((t) => t.name === p.type)!.price;
    facet.push({
      q: lastWord(p.type),
      category: p.categoryPath.slice(0, 1 + Math.floor(random() * p.categoryPath.length)),
      minPrice: low,
      maxPrice: Math.round((low + high) / 2),
    });
  }
  return { plain, typo, prefix, facet };
}
