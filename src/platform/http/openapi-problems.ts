import { ERRORS } from './errors.ts';

/** The RFC 9457 problem document every error answer carries, as an OpenAPI schema. */
export const PROBLEM_SCHEMA = {
  type: 'object',
  required: ['type', 'title', 'status', 'code', 'detail'],
  properties: {
    type: {
      type: 'string',
      description: 'A stable URN naming the problem, e.g. urn:mercato:problem:not-found',
    },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string', enum: Object.keys(ERRORS), description: 'Stable error code; switch on this' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    requestId: { type: 'string' },
    errors: {
      type: 'array',
      description: 'Each failing field of a VALIDATION_FAILED (or schema) problem',
      items: {
        type: 'object',
        required: ['in', 'pointer', 'message'],
        properties: {
          in: { type: 'string', enum: ['body', 'query', 'params', 'headers'] },
          pointer: { type: 'string', description: 'JSON pointer into that part of the request' },
          message: { type: 'string' },
        },
      },
    },
  },
};

type Operation = { responses?: Record<string, unknown> };
type Document = { paths?: Record<string, Record<string, Operation>>; components?: Record<string, unknown> };

const PROBLEM_RESPONSE = {
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
};

/** Adds the Problem schema and 4XX/5XX problem answers to every operation of the document. */
export function withProblemResponses<T extends object>(document: T): T {
  const doc = document as Document;
  doc.components = {
    ...doc.components,
    schemas: { ...(doc.components?.['schemas'] as object), Problem: PROBLEM_SCHEMA },
  };
  for (const item of Object.values(doc.paths ?? {})) {
    for (const operation of Object.values(item)) {
      if (typeof operation !== 'object' || operation === null) continue;
      operation.responses = {
        ...operation.responses,
        '4XX': { description: 'A client error, as RFC 9457 problem details', ...PROBLEM_RESPONSE },
        '5XX': {
          description: 'A server error, as RFC 9457 problem details (never internals)',
          ...PROBLEM_RESPONSE,
        },
      };
    }
  }
  return document;
}
