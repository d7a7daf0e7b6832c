import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { uuidv7 } from '../uuidv7.ts';
import { AppError, toProblem } from './errors.ts';
import { securityHeaders } from './security-headers.ts';

/** Node's parser errors, by their code, as Mercato problems. */
function problemFor(code: string | undefined): AppError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new AppError('HEADERS_TOO_LARGE', 'the request line and headers exceed the server limit');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new AppError('REQUEST_TIMEOUT', 'the request did not arrive in time');
    default:
      return new AppError('BAD_REQUEST', 'the request is not valid HTTP/1.1');
  }
}

/** The whole raw HTTP/1.1 answer to a request Node's parser refused, closing the connection. */
export function clientErrorResponse(code: string | undefined, requestId = uuidv7()): string {
  const problem = problemFor(code);
  const body = JSON.stringify(toProblem(problem, undefined, requestId));
  const headers: Record<string, string> = {
    ...securityHeaders(),
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'x-request-id': requestId,
    connection: 'close',
  };
  const status = `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? 'Error'}`;
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
  return `${status}\r\n${lines.join('\r\n')}\r\n\r\n${body}`;
}

/**
 * Fastify's clientErrorHandler: what Node's HTTP parser cannot read (headers over the size limit,
 * a malformed request line or header, a request that did not arrive in time) never reaches a
 * route, so it is answered here, on the socket, with the same problem+json every other error
 * gets (431 HEADERS_TOO_LARGE, 408 REQUEST_TIMEOUT, 400 BAD_REQUEST) and Connection: close.
 */
export function clientErrorHandler(this: FastifyInstance, error: Error & { code?: string }, socket: Socket) {
  // A reset connection has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  this.log.debug({ err: error }, 'client error');
  // Nothing of an answer sent yet (as Node checks): then the problem, and a graceful close, so
  // the client reads it before the connection goes; a client that keeps it open is cut after 1 s.
  if (socket.writable && socket.bytesWritten === 0) {
    socket.end(clientErrorResponse(error.code));
    setTimeout(() => socket.destroy(), 1000).unref();
  } else {
    socket.destroy();
  }
}
