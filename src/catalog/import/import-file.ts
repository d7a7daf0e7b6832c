import { slugify } from '../products/product-rules.ts';
import { parseCsv } from './csv.ts';

/** Where a problem is in the file: its line and the field (CSV column or JSON pointer). */
export type FileProblem = { line: number; field: string; reason: string };

/** A product read from the file, and how to find a pointer into it in the file. */
export type FileRow = {
  row: unknown;
  line: number;
  locate(pointer: string): { line: number; field: string };
};

export type ParsedFile = { rows: FileRow[]; problems: FileProblem[] };

/** JSON Lines: one product (as POST /products takes it) per line; blank lines are skipped. */
export function parseJsonl(text: string): ParsedFile {
  const rows: FileRow[] = [];
  const problems: FileProblem[] = [];
  text.split(/\r?\n/).forEach((content, i) => {
    const line = i + 1;
    if (content.trim() === '') return;
    try {
      const row: unknown = JSON.parse(content);
      rows.push({ row, line, locate: (pointer) => ({ line, field: pointer === '' ? '/' : pointer }) });
    } catch (error) {
      problems.push({ line, field: '/', reason: `not JSON: ${(error as Error).message}` });
    }
  });
  return { rows, problems };
}

/** The CSV columns of a product (taken from the first row of its handle's group). */
const PRODUCT_COLUMNS = [
  'handle',
  'title',
  'description',
  'status',
  'tags',
  'categories',
  'seo_title',
  'seo_description',
] as const;
/** The CSV columns of a variant (one per row). */
const VARIANT_COLUMNS = [
  'sku',
  'variant_title',
  'weight_grams',
  'barcode',
  'image_url',
  'image_alt',
] as const;
const PREFIXES = ['option.', 'price.', 'compare_at.', 'attr.'] as const;

const list = (cell: string) =>
  cell
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
// Whole numbers become numbers; anything else stays text, so the row's check names it.
const integer = (cell: string): number | string =>
  /^-?\d{1,15}$/.test(cell.trim()) ? Number(cell.trim()) : cell;

type Group = { handle: string; lines: number[]; cells: Array<Map<string, string>> };

/** The field of a pointer into a product built from CSV rows: its column, on the row it came from. */
function csvLocator(group: Group, imageLines: number[]) {
  return (pointer: string): { line: number; field: string } => {
    const parts = pointer.split('/').slice(1);
    const first = group.lines[0]!;
    const [top, index, name, sub] = parts;
    if (top === 'variants' && index !== undefined && /^\d+$/.test(index)) {
      const line = group.lines[Number(index)] ?? first;
      const field =
        name === undefined
          ? 'sku'
          : name === 'title'
            ? 'variant_title'
            : name === 'weightGrams'
              ? 'weight_grams'
              : name === 'options'
                ? `option.${sub ?? ''}`
                : name === 'prices'
                  ? `price.${sub ?? ''}`
                  : name === 'compareAtPrices'
                    ? `compare_at.${sub ?? ''}`
                    : name;
      return { line, field };
    }
    if (top === 'variants') return { line: first, field: 'sku' };
    if (top === 'images')
      return { line: imageLines[Number(index)] ?? first, field: `image_${name ?? 'url'}` };
    if (top === 'attributes') return { line: first, field: index ? `attr.${index}` : 'attr.*' };
    if (top === 'seo') return { line: first, field: `seo_${index ?? 'title'}` };
    if (top === 'categoryHandles' || top === 'categoryIds') return { line: first, field: 'categories' };
    return { line: first, field: top || '(row)' };
  };
}

/** A product body from the rows of one handle. */
function productOf(group: Group): FileRow {
  const head = group.cells[0]!;
  const cell = (name: string) => head.get(name) ?? '';
  const row: Record<string, unknown> = { handle: group.handle, title: cell('title') };
  if (cell('description') !== '') row['description'] = cell('description');
  if (cell('status') !== '') row['status'] = cell('status');
  if (cell('tags') !== '') row['tags'] = list(cell('tags'));
  if (cell('categories') !== '') row['categoryHandles'] = list(cell('categories'));
  const seo: Record<string, string> = {};
  if (cell('seo_title') !== '') seo['title'] = cell('seo_title');
  if (cell('seo_description') !== '') seo['description'] = cell('seo_description');
  if (Object.keys(seo).length > 0) row['seo'] = seo;
  const attributes: Record<string, string> = {};
  for (const [column, value] of head)
    if (column.startsWith('attr.') && value !== '') attributes[column.slice(5)] = value;
  if (Object.keys(attributes).length > 0) row['attributes'] = attributes;
  const images: Array<{ url: string; alt: string }> = [];
  const imageLines: number[] = [];
  row['variants'] = group.cells.map((cells, i) => {
    const variant: Record<string, unknown> = { sku: cells.get('sku') ?? '' };
    const get = (name: string) => cells.get(name) ?? '';
    if (get('variant_title') !== '') variant['title'] = get('variant_title');
    if (get('weight_grams') !== '') variant['weightGrams'] = integer(get('weight_grams'));
    if (get('barcode') !== '') variant['barcode'] = get('barcode');
    const options: Record<string, string> = {};
    const prices: Record<string, unknown> = {};
    const compareAt: Record<string, unknown> = {};
    for (const [column, value] of cells) {
      if (value === '') continue;
      if (column.startsWith('option.')) options[column.slice(7)] = value;
      if (column.startsWith('price.')) prices[column.slice(6)] = integer(value);
      if (column.startsWith('compare_at.')) compareAt[column.slice(11)] = integer(value);
    }
    if (Object.keys(options).length > 0) variant['options'] = options;
    variant['prices'] = prices;
    if (Object.keys(compareAt).length > 0) variant['compareAtPrices'] = compareAt;
    if (get('image_url') !== '') {
      images.push({ url: get('image_url'), alt: get('image_alt') });
      imageLines.push(group.lines[i]!);
    }
    return variant;
  });
  if (images.length > 0) row['images'] = images;
  return { row, line: group.lines[0]!, locate: csvLocator(group, imageLines) };
}

/**
 * CSV with a header row: one row per variant, rows of a product grouped by handle (a row with an
 * empty handle takes its title's slug). Product columns are read from the group's first row.
 * Columns: handle, title, description, status, tags (comma-separated), categories (category
 * handles, comma-separated), seo_title, seo_description, sku, variant_title, option.<name>,
 * price.<ISO 4217> and compare_at.<ISO 4217> (integer minor units), weight_grams, barcode,
 * image_url, image_alt, attr.<name>.
 */
export function parseProductsCsv(text: string): ParsedFile {
  const problems: FileProblem[] = [];
  const { records, unterminatedAt } = parseCsv(text);
  if (unterminatedAt !== undefined)
    problems.push({ line: unterminatedAt, field: '-', reason: 'a quoted field is never closed' });
  const [header, ...body] = records;
  if (!header)
    return { rows: [], problems: [...problems, { line: 1, field: '-', reason: 'the file is empty' }] };
  const columns = header.cells.map((c) => c.trim());
  const known = (c: string) =>
    (PRODUCT_COLUMNS as readonly string[]).includes(c) ||
    (VARIANT_COLUMNS as readonly string[]).includes(c) ||
    PREFIXES.some((p) => c.startsWith(p) && c.length > p.length);
  columns.forEach((c) => {
    if (!known(c))
      problems.push({ line: header.line, field: c || '(blank)', reason: 'unknown column; ignored' });
  });
  if (!columns.includes('sku'))
    problems.push({ line: header.line, field: 'sku', reason: 'the sku column is missing' });
  const groups = new Map<string, Group>();
  for (const record of body) {
    if (record.cells.length !== columns.length) {
      problems.push({
        line: record.line,
        field: '-',
        reason: `has ${record.cells.length} fields, the header ${columns.length}; row skipped`,
      });
      continue;
    }
    const cells = new Map(columns.map((c, i) => [c, record.cells[i]!] as const).filter(([c]) => known(c)));
    const handle = cells.get('handle')?.trim() || slugify(cells.get('title') ?? '');
    if (handle === '') {
      problems.push({
        line: record.line,
        field: 'handle',
        reason: 'a row needs a handle or a title; row skipped',
      });
      continue;
    }
    const group = groups.get(handle) ?? { handle, lines: [], cells: [] };
    group.lines.push(record.line);
    group.cells.push(cells);
    groups.set(handle, group);
  }
  return { rows: [...groups.values()].map(productOf), problems };
}
