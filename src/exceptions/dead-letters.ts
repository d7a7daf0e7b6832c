import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { lockNamed, withTenant } from '../platform/db/index.ts';
import type { DeadLetterEvent } from '../wal/index.ts';
import type { CaptureInput, CaptureMany } from './capture.ts';
import type { ExceptionsDeps } from './deps.ts';
import { EXCEPTION_TOPIC } from './outbound-events.ts';
import type { ExceptionsTrx } from './tables.ts';
import { type TenantFailure, tenantStep } from './tenant-steps.ts';

/** The checkout saga's watchdog (checkout/watchdog.ts): dead, a saga step exhausted its retries. */
const WATCHDOG_TYPE = 'mercato.checkout.watchdog';
/** How often the sweep looks for dead letters the listener missed. (Default: 30 s) */
const SWEEP_EVERY_MS = 30_000;
/** How far back the first sweep of a process looks. (Default: 7 days) */
const FIRST_SWEEP_MS = 7 * 86_400_000;
/** Deaths younger than this are left to the listener (the next sweep looks again). (Default: 5 s) */
const SETTLE_MS = 5_000;
/** Dead letters read per page of a sweep. */
const PAGE = 200;
/** A dead letter's payload kept on its exception up to this size; the detail reads bigger ones from the WAL. */
const MAX_KEPT_PAYLOAD = 65_536;

/** A dead letter as the capture reads it, from the listener (one) or the sweep (many). */
export type DeadLetterRecord = {
  namespace: string;
  messageId: string;
  deliveryId: string;
  headers: Record<string, string>;
  payload: unknown;
  lastError: string | null;
  deadAt: string;
};

/** A sweep's deaths captured, and the tenants whose capture failed (swept again from their oldest death). */
export type SweepResult = { captured: number; failed: TenantFailure[] };

export type SweepOptions = {
  /** Deaths at or after this time (Default: the last sweep's start, less a margin; 7 days back at first). */
  since?: Date;
  /** Deaths younger than this are left to the listener. (Default: 5 s) */
  settleMs?: number;
};

/** `wal:<namespace>:<messageId>`, or with the message id's sha256 when that would pass 200 characters. */
export function deadLetterTransactionId(namespace: string, messageId: string): string {
  const id = `wal:${namespace}:${messageId}`;
  if (id.length <= 200) return id;
  return `wal:${namespace}:sha256:${createHash('sha256').update(messageId).digest('hex')}`;
}

const kept = (payload: unknown) =>
  JSON.stringify(payload ?? null).length <= MAX_KEPT_PAYLOAD ? payload : null;

/**
 * The exception of one dead letter: a DistributionFailed (DISTRIBUTION, operation
 * `wal.deliver:<namespace>`, the last error as its reason, retryable: a retry requeues it), or,
 * for the checkout saga's dead watchdog, a saga step that exhausted its retries (ORDER,
 * `checkout.compensate`, SYSTEM_ERROR, CRITICAL, with its order).
 */
async function toInput(deps: ExceptionsDeps, trx: ExceptionsTrx, tenantId: string, letter: DeadLetterRecord) {
  const type = letter.headers['ce-type'] ?? letter.headers['type'] ?? null;
  const error = letter.lastError?.trim() || 'dead-lettered without an error';
  const input: CaptureInput = {
    transactionId: deadLetterTransactionId(letter.namespace, letter.messageId),
    eventType: 'wal.message.dead-lettered',
    interfaceType: 'DISTRIBUTION',
    operation: `wal.deliver:${letter.namespace}`,
    reason: error,
    externalId: letter.messageId,
    correlationId: letter.headers['ce-correlationid'] ?? null,
    causationId: letter.headers['ce-causationid'] ?? null,
    sourceRef: { kind: 'wal-dead-letter', namespace: letter.namespace, messageId: letter.messageId },
    payload: { type, payload: kept(letter.payload) },
    seenAt: letter.deadAt,
    preset: { retryable: true },
  };
  if (letter.namespace !== 'order-events' || type !== WATCHDOG_TYPE) return input;
  const orderId = (letter.payload as { orderId?: unknown } | null)?.orderId;
  const order =
    typeof orderId === 'string'
      ? await deps.orders.get(trx, tenantId, orderId).catch(() => undefined)
      : undefined;
  return {
    ...input,
    interfaceType: 'ORDER',
    operation: 'checkout.compensate',
    reason: `a checkout saga step exhausted its retries: ${error}`,
    orderId: typeof orderId === 'string' ? orderId : null,
    customerId: order?.customerId ?? null,
    amount: order?.totals.total ?? null,
    currency: order?.currency ?? null,
    preset: { category: 'SYSTEM_ERROR', severity: 'CRITICAL', retryable: true },
  } satisfies CaptureInput;
}

/**
 * Every WAL dead letter becomes an exception: the listener captures each death as the WAL
 * reports it (after the fact, in this process only), and a sweep at start and every 30 s
 * captures those it missed (another process's, or this one's before a crash). A death is
 * captured once: its time becomes the exception's last_seen, and a death no later than that is
 * already counted, so the listener and the sweeps of several processes agree; a dead letter
 * requeued and dead again is a repeat. Dead letters of `exception-events` (the collector's own
 * webhooks) are logged, never captured: capturing them would announce them there again.
 */
export function createDeadLetterCapture(deps: ExceptionsDeps, capture: CaptureMany) {
  const log = deps.ctx.logger.child({ component: 'exceptions-dead-letters' });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  let horizon: Date | undefined;
  /** The listener's deaths waiting for the next capture, by tenant. */
  let queued = new Map<string, DeadLetterEvent[]>();
  let flushing: Promise<void> | undefined;

  /** Captures the tenant's deaths not captured yet, in its transaction; returns how many. */
  async function captureDeaths(trx: ExceptionsTrx, tenantId: string, letters: DeadLetterRecord[]) {
    if (letters.length === 0) return 0;
    // One capture of a tenant's deaths at a time (listener and sweeps, in every process), so the
    // check below sees what the other one wrote.
    await lockNamed(trx, `exceptions.dead-letters:${tenantId}`);
    const deaths = letters.map((l) => ({
      transaction_id: deadLetterTransactionId(l.namespace, l.messageId),
      dead_at: l.deadAt,
    }));
    const { rows } = await sql<{ transaction_id: string }>`
      select d.transaction_id from jsonb_to_recordset(${JSON.stringify(deaths)}::jsonb) as d(transaction_id text, dead_at timestamptz)
      join exceptions.exceptions e on e.tenant_id = ${tenantId} and e.transaction_id = d.transaction_id
      where e.last_seen >= d.dead_at`.execute(trx);
    const captured = new Set(rows.map((r) => r.transaction_id));
    const fresh = letters.filter((l) => !captured.has(deadLetterTransactionId(l.namespace, l.messageId)));
    const inputs = await Promise.all(fresh.map((letter) => toInput(deps, trx, tenantId, letter)));
    await capture(trx, tenantId, inputs);
    return inputs.length;
  }

  async function flush(): Promise<void> {
    const ready = queued;
    queued = new Map();
    const failed: TenantFailure[] = [];
    for (const [tenantId, events] of ready) {
      await tenantStep(failed, tenantId, () =>
        withTenant(deps.db, tenantId, async (anyTrx) => {
          const trx = anyTrx as ExceptionsTrx;
          const letters: DeadLetterRecord[] = [];
          for (const event of events) {
            const letter = await deps.wal.deadLetters.get(trx, tenantId, event.namespace, event.messageId);
            // Requeued or discarded meanwhile: nothing to capture.
            if (letter) letters.push({ ...letter, namespace: event.namespace });
          }
          await captureDeaths(trx, tenantId, letters);
        }),
      );
    }
    // The sweep captures them later.
    for (const { tenantId, error } of failed)
      log.error({ tenantId, error }, 'could not capture dead letters');
    flushing = queued.size > 0 ? flush() : undefined;
  }

  /** The WAL's onDeadLetter listener: queues the death and returns at once (it runs in a delivery cycle). */
  function listen(event: DeadLetterEvent): void {
    if (event.namespace === EXCEPTION_TOPIC) {
      log.warn(
        { tenantId: event.tenantId, messageId: event.messageId, error: event.error },
        'a message of exception-events is dead; not captured (its own announcement would loop)',
      );
      return;
    }
    if (stopped) return;
    const list = queued.get(event.tenantId) ?? [];
    list.push(event);
    queued.set(event.tenantId, list);
    flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(flush);
  }

  /**
   * One pass over the dead letters since the horizon, page by page, in one transaction per tenant
   * and page. A tenant whose capture fails is left in `failed` and the others go on; the horizon
   * then stays at its oldest death, so the next sweep tries it again.
   */
  async function sweep(options: SweepOptions = {}): Promise<SweepResult> {
    const startedAt = Date.now();
    const settle = options.settleMs ?? SETTLE_MS;
    const since = options.since ?? horizon ?? new Date(startedAt - FIRST_SWEEP_MS);
    const result: SweepResult = { captured: 0, failed: [] };
    let oldestFailed = Number.POSITIVE_INFINITY;
    let after: { deadAt: string; id: string } | undefined;
    for (;;) {
      const page = await deps.wal.deadLetters.since(since, PAGE, after);
      const ripe = page.filter(
        (l) => l.namespace !== EXCEPTION_TOPIC && Date.parse(l.deadAt) <= startedAt - settle,
      );
      const tenants = new Map<string, DeadLetterRecord[]>();
      for (const letter of ripe)
        tenants.set(letter.tenantId, [...(tenants.get(letter.tenantId) ?? []), letter]);
      for (const [tenantId, letters] of tenants) {
        const count = await tenantStep(result.failed, tenantId, () =>
          withTenant(deps.db, tenantId, (trx) => captureDeaths(trx as ExceptionsTrx, tenantId, letters)),
        );
        if (count === undefined)
          oldestFailed = Math.min(oldestFailed, ...letters.map((l) => Date.parse(l.deadAt)));
        result.captured += count ?? 0;
      }
      const last = page.at(-1);
      if (!last || page.length < PAGE) break;
      after = { deadAt: last.deadAt, id: last.deliveryId };
    }
    // The next sweep looks again at what this one left to settle, with a margin for clock skew,
    // and at the deaths of the tenants that failed (the others' are found captured, and skipped),
    // at most as far back as a first sweep: a tenant failing for days does not grow every sweep.
    if (options.since === undefined)
      horizon = new Date(
        Math.max(startedAt - FIRST_SWEEP_MS, Math.min(startedAt - settle - 60_000, oldestFailed)),
      );
    return result;
  }

  const tick = () => {
    running = sweep()
      .then(({ captured, failed }) => {
        if (captured > 0) log.info({ count: captured }, 'captured dead letters the listener missed');
        for (const { tenantId, error } of failed)
          log.error({ tenantId, error }, 'dead-letter sweep failed for a tenant');
      })
      .catch((err: unknown) => log.error({ err }, 'dead-letter sweep failed'))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, SWEEP_EVERY_MS);
      });
  };

  return {
    listen,
    sweep,
    start() {
      stopped = false;
      tick();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
      while (flushing) await flushing;
    },
  };
}
