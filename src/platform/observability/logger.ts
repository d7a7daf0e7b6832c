import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON logs to stdout; secrets in headers and bodies are redacted. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'mercato' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers["x-api-key"]',
        'req.headers["x-cart-token"]',
        'req.headers.cookie',
        '*.password',
        '*.refreshToken',
        '*.accessToken',
      ],
      censor: '[redacted]',
    },
  });
}
