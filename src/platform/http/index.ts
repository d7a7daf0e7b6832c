export { type AppOptions, buildApp } from './app.ts';
export {
  type Authenticator,
  actorName,
  actorOf,
  type Credential,
  isStaff,
  PLATFORM_TENANT,
  PLATFORM_TENANT_ID,
  type Principal,
  principalOf,
  ROLES,
  type Role,
  requireOperator,
  requirePermission,
  requirePlatformAdmin,
  requireStaff,
  requireUser,
  SECURED,
  STAFF_ROLES,
  STOREFRONT_SECURED,
  userOf,
} from './auth.ts';
export { clientKey } from './client-key.ts';
export { type CounterStore, memoryCounterStore, redisCounterStore } from './counter-store.ts';
export { cursorId, cursorText, encodeCursor, invalidCursor } from './cursors.ts';
export {
  AppError,
  ERRORS,
  type ErrorCode,
  type FieldError,
  type Problem,
  problemType,
  validationFailed,
} from './errors.ts';
export { beforeBody } from './guards-first.ts';
export { forgetUserAnswers, isIdempotencyKey, requiredIdempotencyKey } from './idempotency.ts';
export { jsonProblem } from './json-guard.ts';
export { escapePointerToken, unescapePointerToken } from './json-pointer.ts';
export { DOCUMENT_AS } from './openapi-components.ts';
export { noBodyIsEmpty } from './optional-body.ts';
export { grants, isGrantable, PERMISSIONS, type Permission } from './permissions.ts';
export { sendProblem } from './problem-handler.ts';
export { sendJson, serialize200 } from './raw-json.ts';
export { counterStoreWithFallback, rateLimitStoreWithFallback } from './redis-fallback.ts';
export { canonicalJson, type RequestFingerprint, requestFingerprint } from './request-fingerprint.ts';
export { parseTraceparent } from './request-id.ts';
export { Nullable } from './schema-helpers.ts';
export { eventMetaOf, storefrontTenant, type TenantResolver } from './storefront.ts';
export { isStorableTimestamp } from './timestamps.ts';
