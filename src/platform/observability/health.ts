/** A dependency /health/ready checks; check() rejects or returns false when it is down. */
export type HealthCheck = { name: string; check: () => Promise<boolean | undefined> };

export type ReadinessReport = { ready: boolean; checks: Record<string, 'up' | 'down'>; down: string[] };

const CHECK_TIMEOUT_MS = 2000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Runs every check at once, each bounded by a timeout. */
export async function checkReadiness(checks: HealthCheck[]): Promise<ReadinessReport> {
  const results = await Promise.all(
    checks.map(async (c) => {
      try {
        return [c.name, (await withTimeout(c.check(), CHECK_TIMEOUT_MS)) !== false] as const;
      } catch {
        return [c.name, false] as const;
      }
    }),
  );
  const down = results.filter(([, up]) => !up).map(([name]) => name);
  return {
    ready: down.length === 0,
    checks: Object.fromEntries(results.map(([name, up]) => [name, up ? 'up' : 'down'])),
    down,
  };
}
