/** A timestamptz as PostgreSQL or PGlite returns it (Date, or text) in ISO 8601, as the API shows times. */
export function isoTime(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}
