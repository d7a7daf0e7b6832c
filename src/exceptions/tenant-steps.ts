/** A tenant whose step of a sweep failed this round: the others went on; it is tried again next round. */
export type TenantFailure = { tenantId: string; error: string };

/**
 * Runs one tenant's step of a sweep over tenants (retention, dead letters). A failure (a bad row,
 * a failing statement, a lock timeout) is recorded in `failures` and answered as undefined, never
 * thrown: one tenant's fault must not stop every other tenant's work that round and every round
 * after, as pg-boss's maintenance reports one queue's error and goes on to the next. The step runs
 * in its own transactions, so a failed one leaves nothing half done; the caller logs the failures
 * and starts the next round from where the failing tenant still needs it.
 */
export async function tenantStep<T>(
  failures: TenantFailure[],
  tenantId: string,
  step: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await step();
  } catch (err) {
    failures.push({ tenantId, error: err instanceof Error ? err.message : String(err) });
    return undefined;
  }
}
