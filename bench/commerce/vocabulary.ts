/**
 * The words `npm run bench:commerce` builds its 100,000 products from: a category tree, product
 * types (each in a leaf category, with its materials, option kind, price band and attributes),
 * brands, adjectives, colours and tags. Query strings are drawn from the same words.
 */

/** A product type: the noun of a title, its leaf category (path from the root) and what varies. */
export type ProductType = {
  name: string;
  category: string[];
  materials: string[];
  sizes: 'apparel' | 'shoes' | 'none' | 'volume';
  /** Price band in minor units (EUR), inclusive. */
  price: [number, number];
  /** Extra attributes: name -> values. */
  attributes: Record<string, string[]>;
  tags: string[];
};

const APPAREL = ['cotton', 'organic cotton', 'linen', 'wool', 'merino wool', 'cashmere', 'denim', 'fleece'];
const OUTER = ['nylon', 'recycled polyester', 'leather', 'waxed cotton', 'down', 'softshell', 'wool'];
const SHOE = ['leather', 'suede', 'canvas', 'mesh', 'nubuck', 'rubber'];
const WOOD = ['oak', 'walnut', 'bamboo', 'pine', 'teak', 'acacia'];
const KITCHEN = ['stainless steel', 'cast iron', 'ceramic', 'copper', 'aluminium', 'enamel'];
const TECH = ['aluminium', 'plastic', 'glass', 'carbon fibre'];
const fit = { fit: ['slim', 'regular', 'relaxed', 'oversized'] };
const season = { season: ['spring', 'summer', 'autumn', 'winter', 'all season'] };
const care = { care: ['machine wash', 'hand wash', 'dry clean only'] };

// biome-ignore format: a table, one product type a line
export const PRODUCT_TYPES: ProductType[] = [
  // Apparel
  t('T-Shirt', ['Apparel', 'Tops', 'T-Shirts'], APPAREL, 'apparel', [1200, 4500], { ...fit, ...care }, ['basics', 'casual']),
  t('Polo Shirt', ['Apparel', 'Tops', 'Shirts'], APPAREL, 'apparel', [2500, 7900], { ...fit, ...care }, ['casual', 'smart']),
  t('Oxford Shirt', ['Apparel', 'Tops', 'Shirts'], APPAREL, 'apparel', [3500, 11000], { ...fit, collar: ['button-down', 'spread', 'cutaway'] }, ['office', 'smart']),
  t('Sweater', ['Apparel', 'Knitwear', 'Sweaters'], APPAREL, 'apparel', [4500, 18000], { ...fit, neck: ['crew', 'v-neck', 'turtleneck'] }, ['knit', 'cosy']),
  t('Cardigan', ['Apparel', 'Knitwear', 'Cardigans'], APPAREL, 'apparel', [5000, 16000], { ...fit }, ['knit', 'layering']),
  t('Hoodie', ['Apparel', 'Tops', 'Sweatshirts'], APPAREL, 'apparel', [3500, 9000], { ...fit, ...care }, ['casual', 'streetwear']),
  t('Jacket', ['Apparel', 'Outerwear', 'Jackets'], OUTER, 'apparel', [7900, 34900], { ...season, waterproof: ['yes', 'no'] }, ['outdoor', 'layering']),
  t('Parka', ['Apparel', 'Outerwear', 'Coats'], OUTER, 'apparel', [12900, 45000], { ...season, waterproof: ['yes'] }, ['winter', 'outdoor']),
  t('Raincoat', ['Apparel', 'Outerwear', 'Coats'], OUTER, 'apparel', [6900, 22000], { waterproof: ['yes'] }, ['rain', 'outdoor']),
  t('Gilet', ['Apparel', 'Outerwear', 'Vests'], OUTER, 'apparel', [4900, 15000], { ...season }, ['layering', 'outdoor']),
  t('Chinos', ['Apparel', 'Bottoms', 'Trousers'], APPAREL, 'apparel', [4500, 12000], { ...fit }, ['smart', 'casual']),
  t('Jeans', ['Apparel', 'Bottoms', 'Jeans'], ['denim', 'selvedge denim', 'stretch denim'], 'apparel', [5900, 19000], { ...fit, rise: ['low', 'mid', 'high'] }, ['denim', 'casual']),
  t('Shorts', ['Apparel', 'Bottoms', 'Shorts'], APPAREL, 'apparel', [2500, 7000], { ...fit }, ['summer', 'casual']),
  t('Dress', ['Apparel', 'Dresses', 'Day Dresses'], ['linen', 'silk', 'cotton', 'viscose'], 'apparel', [5900, 24000], { length: ['mini', 'midi', 'maxi'] }, ['summer', 'occasion']),
  t('Scarf', ['Apparel', 'Accessories', 'Scarves'], ['wool', 'cashmere', 'silk', 'merino wool'], 'none', [2500, 14000], {}, ['winter', 'gift']),
  t('Beanie', ['Apparel', 'Accessories', 'Hats'], ['wool', 'merino wool', 'cashmere', 'fleece'], 'none', [1500, 6000], {}, ['winter', 'knit']),
  t('Socks', ['Apparel', 'Accessories', 'Socks'], ['cotton', 'merino wool', 'bamboo'], 'shoes', [900, 2500], {}, ['basics', 'gift']),
  // Footwear
  t('Sneakers', ['Footwear', 'Sneakers'], SHOE, 'shoes', [6900, 19000], { sole: ['rubber', 'foam', 'gum'] }, ['streetwear', 'casual']),
  t('Running Shoes', ['Footwear', 'Sports Shoes', 'Running'], ['mesh', 'knit', 'synthetic'], 'shoes', [8900, 22000], { drop: ['4 mm', '8 mm', '10 mm'], terrain: ['road', 'trail'] }, ['running', 'sport']),
  t('Hiking Boots', ['Footwear', 'Boots', 'Hiking Boots'], ['leather', 'nubuck', 'suede'], 'shoes', [11900, 29000], { waterproof: ['yes', 'no'] }, ['hiking', 'outdoor']),
  t('Chelsea Boots', ['Footwear', 'Boots', 'Chelsea Boots'], ['leather', 'suede'], 'shoes', [12900, 32000], {}, ['smart', 'autumn']),
  t('Loafers', ['Footwear', 'Shoes', 'Loafers'], ['leather', 'suede'], 'shoes', [9900, 26000], {}, ['smart', 'office']),
  t('Sandals', ['Footwear', 'Sandals'], ['leather', 'rubber', 'cork'], 'shoes', [3500, 12000], {}, ['summer', 'beach']),
  t('Slippers', ['Footwear', 'Slippers'], ['wool', 'sheepskin', 'fleece'], 'shoes', [2500, 8000], {}, ['home', 'cosy', 'gift']),
  // Home & Kitchen
  t('Frying Pan', ['Home & Kitchen', 'Cookware', 'Pans'], KITCHEN, 'none', [2500, 15000], { diameter: ['20 cm', '24 cm', '28 cm'], induction: ['yes', 'no'] }, ['kitchen', 'cooking']),
  t('Saucepan', ['Home & Kitchen', 'Cookware', 'Pots'], KITCHEN, 'none', [2900, 14000], { capacity: ['1.5 l', '2 l', '3 l'] }, ['kitchen', 'cooking']),
  t('Dutch Oven', ['Home & Kitchen', 'Cookware', 'Pots'], ['cast iron', 'enamel'], 'none', [7900, 32000], { capacity: ['3.8 l', '5.2 l', '6.7 l'] }, ['kitchen', 'baking']),
  t("Chef's Knife", ['Home & Kitchen', 'Cutlery', 'Knives'], ['stainless steel', 'damascus steel', 'carbon steel'], 'none', [3900, 25000], { blade: ['18 cm', '20 cm', '24 cm'] }, ['kitchen', 'gift']),
  t('Cutting Board', ['Home & Kitchen', 'Cutlery', 'Boards'], WOOD, 'none', [1900, 8900], {}, ['kitchen']),
  t('Coffee Grinder', ['Home & Kitchen', 'Coffee & Tea', 'Grinders'], ['stainless steel', 'ceramic', 'aluminium'], 'none', [3900, 29000], { burr: ['conical', 'flat'] }, ['coffee', 'kitchen']),
  t('French Press', ['Home & Kitchen', 'Coffee & Tea', 'Coffee Makers'], ['glass', 'stainless steel'], 'volume', [1900, 6900], {}, ['coffee']),
  t('Teapot', ['Home & Kitchen', 'Coffee & Tea', 'Teaware'], ['ceramic', 'cast iron', 'glass', 'porcelain'], 'volume', [1900, 9900], {}, ['tea', 'gift']),
  t('Mug', ['Home & Kitchen', 'Tableware', 'Mugs'], ['ceramic', 'stoneware', 'enamel', 'porcelain'], 'none', [900, 3500], {}, ['coffee', 'tea', 'gift']),
  t('Dinner Plate', ['Home & Kitchen', 'Tableware', 'Plates'], ['stoneware', 'porcelain', 'ceramic'], 'none', [1200, 4500], {}, ['dining']),
  t('Table Lamp', ['Home & Kitchen', 'Lighting', 'Lamps'], ['brass', 'ceramic', 'oak', 'glass'], 'none', [3900, 19000], { bulb: ['E27', 'E14', 'integrated LED'] }, ['lighting', 'living room']),
  t('Throw Blanket', ['Home & Kitchen', 'Textiles', 'Throws'], ['wool', 'cashmere', 'cotton', 'linen'], 'none', [3900, 19000], {}, ['cosy', 'living room', 'gift']),
  t('Duvet Cover', ['Home & Kitchen', 'Textiles', 'Bedding'], ['linen', 'organic cotton', 'percale', 'sateen'], 'none', [4900, 18000], { bed: ['single', 'double', 'king'] }, ['bedroom']),
  t('Cushion', ['Home & Kitchen', 'Textiles', 'Cushions'], ['linen', 'velvet', 'wool', 'cotton'], 'none', [1900, 6900], {}, ['living room']),
  t('Side Table', ['Home & Kitchen', 'Furniture', 'Tables'], WOOD, 'none', [7900, 39000], {}, ['living room', 'furniture']),
  t('Bookshelf', ['Home & Kitchen', 'Furniture', 'Storage'], WOOD, 'none', [9900, 49000], { shelves: ['3', '4', '5'] }, ['furniture', 'storage']),
  // Electronics
  t('Wireless Headphones', ['Electronics', 'Audio', 'Headphones'], TECH, 'none', [4900, 39900], { battery: ['20 h', '30 h', '40 h'], 'noise cancelling': ['yes', 'no'] }, ['audio', 'travel']),
  t('Earbuds', ['Electronics', 'Audio', 'Headphones'], TECH, 'none', [2900, 27900], { battery: ['6 h', '8 h', '10 h'] }, ['audio', 'sport']),
  t('Bluetooth Speaker', ['Electronics', 'Audio', 'Speakers'], TECH, 'none', [3900, 29900], { waterproof: ['yes', 'no'] }, ['audio', 'outdoor']),
  t('Smartwatch', ['Electronics', 'Wearables', 'Smartwatches'], ['aluminium', 'titanium', 'stainless steel'], 'none', [14900, 79900], { gps: ['yes', 'no'] }, ['fitness', 'tech']),
  t('Phone Case', ['Electronics', 'Phone Accessories', 'Cases'], ['silicone', 'leather', 'recycled plastic'], 'none', [1500, 5900], { model: ['iPhone 15', 'iPhone 16', 'Galaxy S24', 'Pixel 9'] }, ['phone', 'gift']),
  t('USB-C Charger', ['Electronics', 'Phone Accessories', 'Chargers'], ['plastic', 'aluminium'], 'none', [1500, 6900], { power: ['20 W', '35 W', '65 W', '100 W'] }, ['phone', 'travel']),
  t('Mechanical Keyboard', ['Electronics', 'Computer Accessories', 'Keyboards'], ['aluminium', 'plastic'], 'none', [6900, 24900], { switches: ['red', 'brown', 'blue'], layout: ['US', 'UK', 'DE'] }, ['office', 'gaming']),
  t('Wireless Mouse', ['Electronics', 'Computer Accessories', 'Mice'], ['plastic', 'aluminium'], 'none', [1900, 12900], { dpi: ['1600', '4000', '16000'] }, ['office', 'gaming']),
  t('Desk Lamp', ['Electronics', 'Smart Home', 'Lighting'], ['aluminium', 'plastic', 'oak'], 'none', [2900, 14900], { dimmable: ['yes', 'no'] }, ['office', 'lighting']),
  // Sports & Outdoors
  t('Backpack', ['Sports & Outdoors', 'Bags', 'Backpacks'], ['nylon', 'canvas', 'recycled polyester', 'waxed cotton'], 'volume', [4900, 22900], { laptop: ['13 in', '15 in', '16 in'] }, ['travel', 'outdoor', 'commute']),
  t('Tent', ['Sports & Outdoors', 'Camping', 'Tents'], ['nylon', 'polyester', 'canvas'], 'none', [9900, 69900], { persons: ['1', '2', '3', '4'], season: ['3-season', '4-season'] }, ['camping', 'outdoor']),
  t('Sleeping Bag', ['Sports & Outdoors', 'Camping', 'Sleeping'], ['down', 'synthetic'], 'none', [6900, 45000], { 'comfort temperature': ['-5 °C', '0 °C', '5 °C'] }, ['camping']),
  t('Water Bottle', ['Sports & Outdoors', 'Hydration', 'Bottles'], ['stainless steel', 'glass', 'recycled plastic'], 'volume', [1200, 4900], { insulated: ['yes', 'no'] }, ['hydration', 'gift']),
  t('Yoga Mat', ['Sports & Outdoors', 'Fitness', 'Yoga'], ['natural rubber', 'cork', 'TPE'], 'none', [2500, 12000], { thickness: ['3 mm', '4 mm', '6 mm'] }, ['yoga', 'fitness']),
  t('Dumbbell Set', ['Sports & Outdoors', 'Fitness', 'Weights'], ['cast iron', 'rubber', 'neoprene'], 'none', [3900, 29000], { weight: ['2 x 5 kg', '2 x 10 kg', '2 x 20 kg'] }, ['fitness', 'home gym']),
  t('Cycling Jersey', ['Sports & Outdoors', 'Cycling', 'Clothing'], ['recycled polyester', 'merino wool'], 'apparel', [4900, 14900], { ...fit }, ['cycling', 'sport']),
  t('Bike Light', ['Sports & Outdoors', 'Cycling', 'Accessories'], ['aluminium', 'plastic'], 'none', [1900, 8900], { lumens: ['200', '400', '800'] }, ['cycling', 'commute']),
  // Beauty
  t('Face Cream', ['Beauty', 'Skincare', 'Moisturisers'], ['shea butter', 'hyaluronic acid', 'aloe vera'], 'volume', [1500, 8900], { skin: ['dry', 'oily', 'combination', 'sensitive'] }, ['skincare', 'vegan']),
  t('Shampoo', ['Beauty', 'Hair Care', 'Shampoo'], ['argan oil', 'tea tree', 'coconut'], 'volume', [800, 3900], { hair: ['dry', 'curly', 'fine', 'coloured'] }, ['hair', 'vegan']),
  t('Eau de Parfum', ['Beauty', 'Fragrance', 'Perfume'], ['sandalwood', 'vetiver', 'bergamot', 'rose', 'amber'], 'volume', [4900, 19000], { family: ['woody', 'floral', 'citrus', 'oriental'] }, ['fragrance', 'gift']),
  t('Scented Candle', ['Home & Kitchen', 'Decor', 'Candles'], ['soy wax', 'beeswax', 'coconut wax'], 'none', [1500, 5900], { scent: ['fig', 'cedar', 'lavender', 'vanilla'] }, ['home', 'gift', 'cosy']),
  // Toys
  t('Building Blocks', ['Toys', 'Construction', 'Blocks'], ['beech', 'plastic', 'bamboo'], 'none', [1900, 9900], { age: ['3+', '6+', '8+'] }, ['kids', 'gift']),
  t('Jigsaw Puzzle', ['Toys', 'Games', 'Puzzles'], ['cardboard', 'wood'], 'none', [1200, 4900], { pieces: ['500', '1000', '2000'] }, ['family', 'gift']),
  t('Plush Bear', ['Toys', 'Soft Toys', 'Teddy Bears'], ['organic cotton', 'plush', 'wool'], 'none', [1500, 6900], { age: ['0+', '3+'] }, ['kids', 'baby', 'gift']),
  t('Board Game', ['Toys', 'Games', 'Board Games'], ['cardboard', 'wood'], 'none', [2500, 7900], { players: ['2-4', '2-6', '3-8'] }, ['family', 'gift']),
  // Garden
  t('Garden Hose', ['Garden', 'Watering', 'Hoses'], ['rubber', 'PVC'], 'none', [1900, 8900], { length: ['15 m', '25 m', '50 m'] }, ['garden']),
  t('Planter', ['Garden', 'Pots & Planters', 'Planters'], ['terracotta', 'ceramic', 'concrete', 'fibreglass'], 'none', [1500, 12000], { diameter: ['20 cm', '30 cm', '40 cm'] }, ['garden', 'plants']),
  t('Pruning Shears', ['Garden', 'Garden Tools', 'Cutting Tools'], ['carbon steel', 'stainless steel'], 'none', [1500, 6900], {}, ['garden', 'tools']),
  t('Garden Bench', ['Garden', 'Outdoor Furniture', 'Benches'], ['teak', 'acacia', 'steel'], 'none', [12900, 59000], { seats: ['2', '3'] }, ['garden', 'furniture']),
];

function t(
  name: string,
  category: string[],
  materials: string[],
  sizes: ProductType['sizes'],
  price: [number, number],
  attributes: Record<string, string[]>,
  tags: string[],
): ProductType {
  return { name, category, materials, sizes, price, attributes, tags };
}

// biome-ignore format: a word list
export const BRANDS = [
  'Northwind', 'Alder & Oak', 'Bluefjord', 'Cobalt Peak', 'Driftwood', 'Everhart', 'Fenwick', 'Granite Row',
  'Harbourline', 'Ironbark', 'Juniper Lane', 'Kestrel', 'Lumina', 'Marlowe', 'Nordvik', 'Oakridge',
  'Pinecrest', 'Quillon', 'Ravenwood', 'Saltmarsh', 'Tidewater', 'Umbra', 'Valemont', 'Westbrook', 'Yarrow',
  'Zephyr', 'Atlas Works', 'Birchfield', 'Copperline', 'Dunmore', 'Elmstead', 'Foxglove', 'Greystone',
  'Highland Co.', 'Islay', 'Jasper & Finch', 'Kinfolk', 'Larkspur', 'Moorland', 'Nightjar', 'Orchard House',
  'Peregrine', 'Redwood', 'Silverbirch', 'Thornbury', 'Upland', 'Verdant', 'Wildmoor',
];

// biome-ignore format: a word list
export const ADJECTIVES = [
  'Classic', 'Essential', 'Rugged', 'Lightweight', 'Premium', 'Vintage', 'Modern', 'Heritage', 'Everyday',
  'Compact', 'Ultralight', 'Waterproof', 'Insulated', 'Handcrafted', 'Minimalist', 'Soft', 'Durable',
  'Packable', 'Organic', 'Recycled', 'Slim', 'Relaxed', 'Tailored', 'Cosy', 'Breathable', 'Professional',
  'Portable', 'Ergonomic', 'Signature', 'Urban', 'Alpine', 'Coastal', 'Nordic', 'Studio', 'Weekend',
];

// biome-ignore format: a word list
export const COLOURS = [
  'black', 'white', 'navy', 'grey', 'charcoal', 'olive', 'sand', 'rust', 'forest green', 'burgundy', 'cream',
  'sky blue', 'mustard', 'terracotta', 'sage', 'stone', 'camel', 'ink blue', 'red', 'natural',
];

export const SIZES: Record<ProductType['sizes'], string[]> = {
  apparel: ['XS', 'S', 'M', 'L', 'XL', 'XXL'],
  shoes: ['38', '39', '40', '41', '42', '43', '44', '45', '46'],
  volume: ['250 ml', '500 ml', '750 ml', '1 l'],
  none: [],
};

// biome-ignore format: a word list
export const EXTRA_TAGS = [
  'new', 'bestseller', 'sale', 'limited edition', 'eco', 'handmade', 'made in portugal', 'made in italy',
  'fair trade', 'vegan', 'gift idea', 'staff pick',
];

/** Sentences of descriptions; {x} are filled from the product. */
export const SENTENCES = [
  'The {brand} {adjective} {type} is made from {material} for everyday comfort and years of use.',
  'Designed in our {city} studio, this {type} pairs {material} with a clean, {adjective} silhouette.',
  'A {colour} {type} that works from the weekend to the office, season after season.',
  'Finished by hand and checked piece by piece, it is built to be repaired rather than replaced.',
  'Its {material} ages beautifully and only gets better the more you use it.',
  'Thoughtful details throughout: reinforced seams, a considered fit and a finish that feels right.',
  'Part of our {category} collection, made in small batches with suppliers we have known for years.',
  'Easy to care for: {care}.',
  'Pairs well with the rest of the {brand} range and makes a thoughtful gift.',
  'We chose {material} because it is {quality}, {quality2} and kind to the planet.',
  'Rated {rating} out of 5 by customers who love its {feature}.',
  'Ships in plastic-free packaging within two working days.',
];

export const CITIES = [
  'Lisbon',
  'Copenhagen',
  'Portland',
  'Glasgow',
  'Kyoto',
  'Melbourne',
  'Bergen',
  'Porto',
];
export const QUALITIES = [
  'hard-wearing',
  'breathable',
  'warm',
  'light',
  'soft',
  'naturally water-resistant',
  'easy to clean',
];
export const FEATURES = ['fit', 'finish', 'comfort', 'weight', 'colour', 'sound', 'grip', 'build quality'];
export const CARE = [
  'wipe clean with a damp cloth',
  'machine wash at 30 °C',
  'hand wash cold',
  'oil the surface twice a year',
];
