import type { BackendUnavailableError, StreamBackendName } from './contract.ts';

// A call to a stream backend made while a PostgreSQL transaction is open (the prune's retire, the
// relay's append) holds that transaction, and on PGlite (one session) every other statement of
// the process, for as long as the backend takes to answer. A backend that takes the call and never
// answers (a server stopped or overloaded, a network dropping packets: the connection stays up)
// would stall the process: a Redis command has no timeout of its own. So those calls are bounded,
// and the backend is asked first (ping, bounded too) with no transaction open.

/**
 * A backend gave no answer within the time its caller waits (`bounded`). Unlike
 * BackendUnavailableError, what was asked may still be done, later: an append that timed out may
 * land. So it is never a reason to write the same rows elsewhere (a fallback): they would be
 * stored twice. The caller asks the same backend again later.
 */
export class BackendTimeoutError extends Error {
  override readonly name = 'BackendTimeoutError';
  readonly backend: StreamBackendName;
  constructor(backend: StreamBackendName, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.backend = backend;
  }
}

/**
 * `call` given `ms` to answer; past that, its signal is aborted and `bounded` throws a `late`
 * (BackendTimeoutError unless told otherwise). The call may still be running: its outcome is
 * dropped.
 */
export async function bounded<T>(
  stream: { name: StreamBackendName },
  what: string,
  ms: number,
  call: (signal: AbortSignal) => Promise<T>,
  late: typeof BackendTimeoutError | typeof BackendUnavailableError = BackendTimeoutError,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const answer = call(controller.signal);
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new late(stream.name, `${stream.name} ${what}: no answer within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    clearTimeout(timer);
    answer.catch(() => undefined);
  }
}
