export { canWriteNamespace, WAL_WRITE } from './access.ts';
export { createNamespaceCache, NAMESPACE_CHANGES_CHANNEL } from './cache.ts';
export { maskSecret, namespaceView } from './masks.ts';
export type {
  HttpTarget,
  InternalTarget,
  Namespace,
  NamespaceCache,
  RedisTarget,
  RetryPolicy,
  SqlTarget,
  Target,
} from './namespace.ts';
export { backendsHolding } from './namespace.ts';
export {
  compilePayloadSchema,
  MAX_LISTED_ERRORS,
  MAX_PAYLOAD_SCHEMA_BYTES,
  namespaceValidator,
} from './payload-schema.ts';
export { namespaceRoutes } from './routes.ts';
export {
  createNamespace,
  deleteNamespace,
  disableTarget,
  getNamespace,
  listEnabledNamespaces,
  listNamespaces,
  requireNamespace,
  toNamespace,
  updateNamespace,
} from './store.ts';
