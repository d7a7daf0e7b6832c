/**
 * The one error catalogue. Every error Mercato answers with has a stable `code`, an HTTP status
 * and a title here; a route throws `new AppError('NOT_FOUND', 'user 42 not found')` and the
 * error handler turns it into RFC 9457 application/problem+json.
 */
export const ERRORS = {
  ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  NOT_FOUND: { status: 404, title: 'Resource not found' },
  VALIDATION_FAILED: { status: 400, title: 'Request is invalid' },
  MALFORMED_BODY: { status: 400, title: 'Request body is not valid JSON' },
  JSON_TOO_DEEP: { status: 400, title: 'JSON is nested too deeply' },
  INVALID_UNICODE: { status: 400, title: 'Text holds a lone UTF-16 surrogate' },
  NUMBER_OUT_OF_RANGE: { status: 400, title: 'Number cannot be represented' },
  INVALID_CURSOR: { status: 400, title: 'Cursor is malformed' },
  BAD_REQUEST: { status: 400, title: 'Request is malformed' },
  TENANT_REQUIRED: { status: 400, title: 'Anonymous requests name the store with X-Tenant' },
  IDEMPOTENCY_KEY_REQUIRED: { status: 400, title: 'This request needs an Idempotency-Key header' },
  UNAUTHENTICATED: { status: 401, title: 'Authentication required' },
  INVALID_TOKEN: { status: 401, title: 'Credential is invalid or expired' },
  INVALID_CREDENTIALS: { status: 401, title: 'Email or password is wrong' },
  REFRESH_TOKEN_REUSED: { status: 401, title: 'Refresh token was already used; its session is revoked' },
  FORBIDDEN: { status: 403, title: 'Not allowed' },
  TARGET_TYPE_FORBIDDEN: { status: 403, title: 'Only the operator may configure this target type' },
  TENANT_SUSPENDED: { status: 403, title: 'Tenant is suspended' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed on this route' },
  REQUEST_TIMEOUT: { status: 408, title: 'Request did not arrive in time' },
  CONFLICT: { status: 409, title: 'Conflicts with the current state' },
  NAMESPACE_LIMIT_REACHED: { status: 409, title: 'Namespace limit reached' },
  EMAIL_TAKEN: { status: 409, title: 'Email already registered' },
  TENANT_SLUG_TAKEN: { status: 409, title: 'Tenant slug already taken' },
  IDEMPOTENCY_KEY_REUSED: { status: 409, title: 'Idempotency-Key was used with a different request' },
  NAMESPACE_DISABLED: { status: 409, title: 'WAL namespace is disabled' },
  SYSTEM_NAMESPACE: { status: 409, title: 'System namespaces cannot be deleted, disabled or renamed' },
  HANDLE_TAKEN: { status: 409, title: 'Product handle already taken' },
  SKU_TAKEN: { status: 409, title: 'SKU already taken' },
  VARIANT_LIMIT: { status: 409, title: 'A product has 1 to 100 variants' },
  CATEGORY_CYCLE: { status: 409, title: 'A category cannot be its own ancestor' },
  CATEGORY_IN_USE: { status: 409, title: 'Category still has children or products' },
  INSUFFICIENT_STOCK: { status: 409, title: 'Not enough stock available' },
  CART_TOTAL_TOO_LARGE: { status: 409, title: 'Cart total is too large to be exact' },
  RESERVATION_NOT_ACTIVE: { status: 409, title: 'Reservation is no longer active' },
  LOCATION_IN_USE: { status: 409, title: 'Location still holds stock or is the default' },
  PRODUCT_NOT_AVAILABLE: { status: 409, title: 'Product is not available for sale' },
  ILLEGAL_TRANSITION: { status: 409, title: 'This status change is not allowed' },
  OUT_OF_STOCK: { status: 409, title: 'An item of the order is out of stock' },
  ORDER_CANCELLED: { status: 409, title: 'The order was cancelled during its checkout' },
  SOLD_OUT: { status: 409, title: 'The flash sale is sold out' },
  LIMIT_REACHED: { status: 409, title: 'The customer reached the flash sale’s per-customer limit' },
  FLASH_SALE_LIMIT_REACHED: {
    status: 409,
    title: 'The store has as many flash sales not yet settled as it may',
  },
  NOT_LIVE: { status: 409, title: 'The flash sale is not live' },
  CAMPAIGN_STARTED: { status: 409, title: 'The flash sale has started; it can no longer be changed' },
  PAYMENT_WINDOW_CLOSED: { status: 409, title: 'The payment window of this order has closed' },
  NOT_RETRYABLE: { status: 409, title: 'This exception cannot be retried' },
  RETRY_LIMIT_REACHED: { status: 409, title: 'The exception has used every retry it is allowed' },
  RETRY_IN_PROGRESS: { status: 409, title: 'A retry of this exception is already running' },
  SOURCE_NOT_CONFIGURED: { status: 409, title: 'No source is configured for this interface type' },
  SOURCE_UNAVAILABLE: { status: 503, title: 'The interface’s source is failing; its circuit is open' },
  REFUND_EXCEEDS_CAPTURED: { status: 409, title: 'Refund exceeds what was captured and not yet refunded' },
  PAYMENT_DECLINED: { status: 402, title: 'Payment was declined' },
  CHECKOUT_INVALID: { status: 422, title: 'Checkout cannot proceed as it is' },
  PAYMENT_PROVIDER_ERROR: { status: 502, title: 'Payment provider failed' },
  CHECKOUT_TIMEOUT: { status: 504, title: 'A checkout step did not finish in time' },
  INVALID_WEBHOOK_SIGNATURE: { status: 401, title: 'Webhook signature is missing, invalid or too old' },
  PRECONDITION_FAILED: { status: 412, title: 'If-Match does not name the current version' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported content type' },
  PAYLOAD_SCHEMA_MISMATCH: { status: 422, title: 'Payload does not match the namespace schema' },
  DELAY_TOO_LONG: { status: 422, title: 'Delay exceeds the namespace maximum' },
  HEADERS_TOO_LARGE: { status: 431, title: 'Request header fields too large' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  LOGIN_THROTTLED: { status: 429, title: 'Too many login attempts' },
  INTERNAL: { status: 500, title: 'Internal error' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'Service unavailable' },
  BACKEND_UNAVAILABLE: { status: 503, title: 'WAL backend unavailable' },
  DATABASE_UNAVAILABLE: { status: 503, title: 'Database unavailable' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** One failing field of a request, by JSON pointer into the request part named. */
export type FieldError = { in: 'body' | 'query' | 'params' | 'headers'; pointer: string; message: string };

export type ProblemExtras = { errors?: FieldError[]; retryAfterSeconds?: number; [key: string]: unknown };

export class AppError extends Error {
  override name = 'AppError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly extras: ProblemExtras;

  /**
   * A refusal (4xx) carries no stack trace: it is answered, never logged as a failure, and taking
   * a trace was a tenth of the server's CPU where refusals are most of the traffic (a sold-out
   * flash sale). A failure (5xx) keeps its trace for the log.
   */
  constructor(code: ErrorCode, detail?: string, extras: ProblemExtras = {}, options?: { cause?: unknown }) {
    const traced = ERRORS[code].status >= 500;
    const limit = Error.stackTraceLimit;
    if (!traced) Error.stackTraceLimit = 0;
    try {
      super(detail ?? ERRORS[code].title, options);
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.code = code;
    this.status = ERRORS[code].status;
    this.extras = extras;
  }
}

/** 400 VALIDATION_FAILED listing every failing field (`errors`), its detail counting them. */
export function validationFailed(errors: FieldError[]): AppError {
  return new AppError('VALIDATION_FAILED', `${errors.length} field(s) failed validation`, { errors });
}

export type Problem = {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  instance?: string;
  requestId?: string;
  errors?: FieldError[];
  [key: string]: unknown;
};

/** `type` URIs are stable URNs: a client may switch on them or on `code`. */
export function problemType(code: ErrorCode): string {
  return `urn:mercato:problem:${code.toLowerCase().replaceAll('_', '-')}`;
}

export function toProblem(error: AppError, instance?: string, requestId?: string): Problem {
  const { retryAfterSeconds: _hidden, ...extras } = error.extras;
  // The extras first: one named like a member of the problem (a reservation's `status`) cannot hide it.
  return {
    ...extras,
    type: problemType(error.code),
    title: ERRORS[error.code].title,
    status: error.status,
    code: error.code,
    detail: error.message,
    ...(instance ? { instance } : {}),
    ...(requestId ? { requestId } : {}),
  };
}
