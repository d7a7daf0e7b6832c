import { type RawBuilder, sql } from 'kysely';

/**
 * A column of jsonRows: its name and PostgreSQL type, a scalar one (an array's JSON text is no
 * array literal). A `jsonb` column is taken as JSON, not as text; JSON null is SQL NULL in every
 * column, as jsonb_to_recordset reads it.
 */
export type JsonColumn = readonly [name: string, type: string];

const NAME = /^[a-z_][a-z0-9_]*$/;
const TYPE = /^[a-z][a-z0-9_ ]*$/;

/**
 * Many rows as ONE bound parameter, read back as a relation: `select … from ${jsonRows(columns,
 * rows)} as x`. The parameter is a JSON array of arrays, each row's values in the order of
 * `columns`: jsonb's input sorts and de-duplicates the keys of every object, so rows sent as
 * objects (jsonb_to_recordset) cost about twice as much to parse as the same rows as arrays (a
 * capture batch of 500 rows of 23 columns: 12 ms against 5 ms on a 2-core VM). `columns` is code,
 * never input: names and types are checked against a strict pattern.
 *
 * The relation ends in `limit <its row count>` (a parameter: one statement text, one prepared
 * statement, whatever the count), which tells the planner how many rows it holds, and a generic
 * plan about 10. A set-returning function alone counts as 100 rows, so an UPDATE … FROM of 1 to 30
 * rows on a table of a few thousand would otherwise hash-join a sequential scan of the whole table
 * (3.5 ms a statement on 3,620 inventory items) instead of looking its rows up by index.
 */
export function jsonRows(
  columns: readonly JsonColumn[],
  rows: readonly (readonly unknown[])[],
): RawBuilder<unknown> {
  const list = columns.map(([name, type], i) => {
    if (!NAME.test(name) || !TYPE.test(type)) throw new Error(`jsonRows: bad column ${name} ${type}`);
    if (type === 'jsonb') return `nullif(r->${i}, 'null'::jsonb) as ${name}`;
    if (type === 'text') return `r->>${i} as ${name}`;
    return `(r->>${i})::${type} as ${name}`;
  });
  return sql`(select ${sql.raw(list.join(', '))} from jsonb_array_elements(${JSON.stringify(rows)}::jsonb) as r
    limit ${rows.length})`;
}

/** jsonRows of objects: each row's values are its properties named by `columns` (missing: null). */
export function jsonObjects(
  columns: readonly JsonColumn[],
  objects: readonly Readonly<Record<string, unknown>>[],
): RawBuilder<unknown> {
  return jsonRows(
    columns,
    objects.map((o) => columns.map(([name]) => o[name] ?? null)),
  );
}
