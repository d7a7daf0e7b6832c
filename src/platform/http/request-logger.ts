import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Logger } from 'pino';

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/**
 * A request's logger that becomes a real pino child only when the request logs a line at an
 * enabled level. Most requests log nothing at the usual levels, and making two children for
 * each (Fastify's with the request id, then one with the principal) cost about 4% of the
 * server's CPU on the WAL write path. Children of it gather their bindings until then.
 * `parent` must be a pino logger (it answers isLevelEnabled); a child with its own level is
 * made at once.
 */
export function lazyChildLogger(
  parent: Logger,
  bindings: Bindings,
  options?: ChildLoggerOptions,
): FastifyBaseLogger {
  if (options?.level !== undefined) return parent.child(bindings, options) as FastifyBaseLogger;
  let real: Logger | undefined;
  const made = () => {
    real ??= parent.child(bindings, options);
    return real;
  };
  const logger = {
    get level() {
      return (real ?? parent).level;
    },
    set level(value: string) {
      made().level = value;
    },
    silent() {},
    child(more: Bindings, moreOptions?: ChildLoggerOptions): FastifyBaseLogger {
      if (real) return real.child(more, moreOptions) as FastifyBaseLogger;
      return lazyChildLogger(parent, { ...bindings, ...more }, moreOptions ?? options);
    },
  } as Record<string, unknown>;
  for (const level of LEVELS) {
    logger[level] = (...args: unknown[]) => {
      if (!(real ?? parent).isLevelEnabled(level)) return;
      (made()[level] as (...a: unknown[]) => void)(...args);
    };
  }
  return logger as unknown as FastifyBaseLogger;
}
