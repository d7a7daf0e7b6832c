/**
 * Writes the values a validated query string or path gives for `format: 'uuid'` properties in
 * lowercase, as PostgreSQL stores and prints a uuid. The format accepts capitals, and PostgreSQL
 * matches them, but code that compares or stores the id as text did not (an admin's own id in
 * capitals passed the "not yourself" check; a revoked key stayed in its cache): every route now
 * sees one spelling. Bodies are left as sent.
 */
export function lowercaseUuids(schema: unknown, value: unknown): void {
  const properties = (schema as { properties?: Record<string, { format?: unknown }> } | undefined)
    ?.properties;
  if (!properties || typeof value !== 'object' || value === null) return;
  const record = value as Record<string, unknown>;
  for (const [name, property] of Object.entries(properties)) {
    const text = record[name];
    if (property.format === 'uuid' && typeof text === 'string') record[name] = text.toLowerCase();
  }
}
