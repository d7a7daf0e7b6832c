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
  return new LazyLogger(parent, bindings, options) as unknown as FastifyBaseLogger;
}

type Level = (typeof LEVELS)[number];

/** Its methods live on the prototype: a request pays for one small object, not a set of closures. */
class LazyLogger {
  readonly #parent: Logger;
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions | undefined;
  #real: Logger | undefined;

  constructor(parent: Logger, bindings: Bindings, options: ChildLoggerOptions | undefined) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  #made(): Logger {
    this.#real ??= this.#parent.child(this.#bindings, this.#options);
    return this.#real;
  }

  #log(level: Level, args: unknown[]): void {
    if (!(this.#real ?? this.#parent).isLevelEnabled(level)) return;
    (this.#made()[level] as (...a: unknown[]) => void)(...args);
  }

  get level(): string {
    return (this.#real ?? this.#parent).level;
  }

  set level(value: string) {
    this.#made().level = value;
  }

  silent(): void {}

  child(more: Bindings, moreOptions?: ChildLoggerOptions): FastifyBaseLogger {
    if (this.#real) return this.#real.child(more, moreOptions) as FastifyBaseLogger;
    return lazyChildLogger(this.#parent, { ...this.#bindings, ...more }, moreOptions ?? this.#options);
  }

  fatal(...args: unknown[]): void {
    this.#log('fatal', args);
  }

  error(...args: unknown[]): void {
    this.#log('error', args);
  }

  warn(...args: unknown[]): void {
    this.#log('warn', args);
  }

  info(...args: unknown[]): void {
    this.#log('info', args);
  }

  debug(...args: unknown[]): void {
    this.#log('debug', args);
  }

  trace(...args: unknown[]): void {
    this.#log('trace', args);
  }
}
