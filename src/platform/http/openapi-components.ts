/**
 * Post-processing of the OpenAPI document @fastify/swagger builds from the route schemas:
 * documentation-only schemas, shared schemas under components, and an operationId everywhere.
 *
 * Route schemas say what to share with two keywords that validation and serialization ignore:
 * - `title: 'Name'` (a capitalised word): the schema becomes `#/components/schemas/Name`, and
 *   every other place with the same schema refers to it;
 * - `'x-document-as': schema`: the route validates with its own schema (e.g. a loose one whose
 *   fields the handler checks one by one) but documents this one instead.
 */

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The keyword whose value a schema is documented as. */
export const DOCUMENT_AS = 'x-document-as';
const COMPONENT_NAME = /^[A-Z][A-Za-z0-9]*$/;
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];

/** A copy of value with every `x-document-as` schema put in place of the schema carrying it. */
function documentAs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(documentAs);
  if (!isObject(value)) return value;
  if (isObject(value[DOCUMENT_AS])) return documentAs(structuredClone(value[DOCUMENT_AS]));
  const copy: Json = {};
  for (const [key, child] of Object.entries(value)) copy[key] = documentAs(child);
  return copy;
}

/** JSON with sorted keys: equal schemas give equal text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (!isObject(value)) return JSON.stringify(value) ?? 'null';
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
}

const isTitledSchema = (value: Json): value is Json & { title: string } =>
  typeof value['title'] === 'string' &&
  COMPONENT_NAME.test(value['title']) &&
  ['type', 'properties', 'oneOf', 'anyOf', 'allOf', '$ref', 'enum'].some((k) => k in value);

/**
 * Moves every titled schema to components.schemas (nested ones first, so a component refers to
 * the components inside it) and puts a $ref in its place. A second, different schema under a
 * name already taken stays where it is.
 */
function liftComponents(value: unknown, schemas: Json): unknown {
  if (Array.isArray(value)) return value.map((item) => liftComponents(item, schemas));
  if (!isObject(value)) return value;
  const copy: Json = {};
  for (const [key, child] of Object.entries(value)) copy[key] = liftComponents(child, schemas);
  if (!isTitledSchema(copy)) return copy;
  const name = copy.title;
  const existing = schemas[name];
  if (existing === undefined) schemas[name] = copy;
  else if (canonical(existing) !== canonical(copy)) return copy;
  return { $ref: `#/components/schemas/${name}` };
}

const pascal = (word: string) =>
  word
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');

/**
 * The operationId of an operation without one: the method and the path in camelCase, without the
 * `/api/v1` prefix, each path parameter as `By<Name>`: `getWalNamespacesByName`. Stable as long
 * as the route is; unique because method and path are.
 */
export function operationIdOf(method: string, path: string): string {
  const words = path
    .replace(/^\/api\/v\d+/, '')
    .split('/')
    .filter(Boolean)
    .map((segment) => {
      const param = /^\{(.+)\}$/.exec(segment);
      return param ? `By${pascal(param[1]!)}` : pascal(segment);
    });
  return `${method.toLowerCase()}${words.join('')}`;
}

/**
 * Applies `x-document-as`, lifts titled schemas to components.schemas and gives every operation
 * an operationId (a route's own one wins).
 */
export function withSharedComponents<T extends object>(document: T): T {
  const doc = document as Json & { paths?: Record<string, Json>; components?: Json };
  doc.components ??= {};
  const components = doc.components;
  const schemas = (components['schemas'] as Json | undefined) ?? {};
  const lifted = liftComponents(documentAs(doc.paths ?? {}), schemas) as Record<string, Json>;
  // Components may carry documentation-only schemas too (added before this step).
  components['schemas'] = liftComponentsIn(schemas);
  doc.paths = lifted;
  for (const [path, item] of Object.entries(lifted)) {
    for (const [method, operation] of Object.entries(item)) {
      if (!METHODS.includes(method) || !isObject(operation)) continue;
      operation['operationId'] ??= operationIdOf(method, path);
    }
  }
  return document;
}

/** Lifts the titled schemas nested in components themselves (a component's own title stays). */
function liftComponentsIn(schemas: Json): Json {
  for (const [name, schema] of Object.entries(schemas)) {
    if (!isObject(schema)) continue;
    const copy: Json = {};
    for (const [key, child] of Object.entries(schema)) copy[key] = liftComponents(child, schemas);
    schemas[name] = copy;
  }
  return schemas;
}
