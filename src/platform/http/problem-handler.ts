import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { databaseProblem } from '../db/db-errors.ts';
import { AppError, type FieldError, toProblem, validationFailed } from './errors.ts';
import { escapePointerToken, unescapePointerToken } from './json-pointer.ts';

type ValidationIssue = {
  instancePath?: string;
  schemaPath?: string;
  message?: string;
  params?: Record<string, unknown>;
  keyword?: string;
};

/** The names a params member holds: one (Ajv's missingProperty) or several (TypeBox's lists). */
const namesIn = (value: unknown): string[] =>
  value === undefined ? [] : [value].flat().map((name) => String(name));

/**
 * The fields one issue is about, each with its message in words. A missing or unexpected property
 * is reported on its parent; it gets a pointer of its own and a message naming it (`missing field
 * "password"`, `unknown field "role"`). TypeBox also reports an unexpected property as `schema is
 * false` at the property itself: the same field, said the same way.
 */
function fieldsOf(issue: ValidationIssue): { pointer: string; message: string }[] {
  const base = issue.instancePath ?? '';
  const at = (name: string) => `${base}/${escapePointerToken(name)}`;
  if (issue.keyword === 'required') {
    const names = namesIn(issue.params?.['requiredProperties'] ?? issue.params?.['missingProperty']);
    return names.map((name) => ({ pointer: at(name), message: `missing field ${JSON.stringify(name)}` }));
  }
  if (issue.keyword === 'additionalProperties') {
    const names = namesIn(issue.params?.['additionalProperties'] ?? issue.params?.['additionalProperty']);
    return names.map((name) => ({ pointer: at(name), message: `unknown field ${JSON.stringify(name)}` }));
  }
  if (issue.keyword === 'boolean' && issue.schemaPath?.endsWith('/additionalProperties')) {
    const name = unescapePointerToken(base.slice(base.lastIndexOf('/') + 1));
    return [{ pointer: base, message: `unknown field ${JSON.stringify(name)}` }];
  }
  return [{ pointer: base, message: issue.message ?? 'is invalid' }];
}

/**
 * One FieldError per failing field: a missing or unexpected property gets a pointer of its own,
 * and the several issues a union or a repeated check raises on one field are joined.
 */
export function fieldErrors(part: string, issues: ValidationIssue[]): FieldError[] {
  // Fastify names the query string part "querystring".
  const named = part === 'querystring' ? 'query' : part;
  const where = (['body', 'query', 'params', 'headers'].includes(named) ? named : 'body') as FieldError['in'];
  const byPointer = new Map<string, string[]>();
  for (const issue of issues) {
    for (const { pointer, message } of fieldsOf(issue)) {
      const messages = byPointer.get(pointer || '/') ?? [];
      if (!messages.includes(message)) messages.push(message);
      byPointer.set(pointer || '/', messages);
    }
  }
  return [...byPointer].map(([pointer, messages]) => ({ in: where, pointer, message: messages.join('; ') }));
}

const FASTIFY_CODES: Record<string, AppError['code']> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_BODY',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_BODY',
};

/** Maps anything thrown by a route, a hook or Fastify itself onto one AppError. */
export function toAppError(error: FastifyError | Error): AppError {
  if (error instanceof AppError) return error;
  // A lost database or a statement past its timeout: 503 with Retry-After (see db-errors.ts).
  const database = databaseProblem(error);
  if (database) return database;
  const fe = error as FastifyError & { validationContext?: string };
  if (Array.isArray(fe.validation)) {
    const errors = fieldErrors(fe.validationContext ?? 'body', fe.validation as ValidationIssue[]);
    return validationFailed(errors);
  }
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new AppError(mapped, fe.message);
  if (error instanceof SyntaxError || fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new AppError('MALFORMED_BODY', 'request body is not valid JSON');
  }
  const status = fe.statusCode ?? 500;
  if (status === 413) return new AppError('PAYLOAD_TOO_LARGE', fe.message);
  if (status === 415) return new AppError('UNSUPPORTED_MEDIA_TYPE', fe.message);
  if (status === 404) return new AppError('NOT_FOUND', fe.message);
  if (status >= 400 && status < 500) return new AppError('VALIDATION_FAILED', fe.message);
  return new AppError(
    'INTERNAL',
    'an unexpected error occurred; the request id identifies it in the logs',
    {},
    {
      cause: error,
    },
  );
}

/** Sends an AppError as application/problem+json, with Retry-After when it has one. */
export function sendProblem(request: FastifyRequest, reply: FastifyReply, appError: AppError): FastifyReply {
  if (appError.extras.retryAfterSeconds !== undefined) {
    reply.header('retry-after', String(Math.max(1, Math.ceil(appError.extras.retryAfterSeconds))));
  }
  if (appError.code === 'UNAUTHENTICATED' || appError.code === 'INVALID_TOKEN') {
    reply.header('www-authenticate', 'Bearer');
  }
  return reply
    .code(appError.status)
    .type('application/problem+json')
    .send(toProblem(appError, request.url.split('?')[0], String(request.id)));
}

export function problemErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const appError = toAppError(error);
  if (appError.status >= 500) request.log.error({ err: appError.cause ?? error }, 'request failed');
  return sendProblem(request, reply, appError);
}
