/**
 * Part `capture` of `npm run bench:exceptions`: the tenant's integrations write inbound events to
 * `interface-exceptions` through `POST /api/v1/wal/write/batch` (an API key with wal:write), and the
 * collector captures them through its internal target. Counted when queryable: the clock stops when
 * the bench tenant's exceptions table holds every distinct transaction id written.
 */
import { readFileSync } from 'node:fs';
import { sql } from '../commerce/setup.ts';
import { INBOUND, REASONS, SKUS, WAREHOUSES } from './vocabulary.ts';

export type CaptureResult = {
  events: number;
  distinct: number;
  batch: number;
  writers: number;
  /** Seconds until every write was acknowledged (202). */
  writeSeconds: number;
  /** Seconds until every exception was queryable. */
  seconds: number;
  writesPerSecond: number;
  capturedPerSecond: number;
  /**
   * Busy CPU time of the whole machine (server, PostgreSQL, this client) per event, in ms: steadier
   * than the rate on a VM whose speed drifts between runs. Null where /proc/stat is missing.
   */
  cpuMsPerEvent: number | null;
};

/** The data of inbound event i (its type's fields included); one in `repeatEvery` repeats an earlier id. */
export function inboundEvent(
  i: number,
  repeatEvery: number,
): { type: string; data: Record<string, unknown> } {
  const kind = INBOUND[i % INBOUND.length]!;
  const n = repeatEvery > 0 && i % repeatEvery === repeatEvery - 1 ? i - 1 : i;
  const reason = REASONS[(i * 7) % REASONS.length]!.replace('#', String(1000 + ((i * 31) % 9000)));
  const data: Record<string, unknown> = {
    transactionId: `CAP-${n}`,
    externalId: `EXT-${(n * 7919) % 10_000_000}`,
    reason,
    operation: kind.type === 'ValidationError' ? 'validate' : 'submit',
    customerId: `CUST-${n % 20_000}`,
    locationCode: `WH-${n % WAREHOUSES}`,
    details: { sku: `SKU-${n % SKUS}`, channel: 'erp' },
  };
  if (kind.interfaceType === 'ORDER') {
    data['orderId'] = `ORD-${n}`;
    data['amount'] = 1000 + (n % 50_000);
    data['currency'] = 'EUR';
  }
  if (kind.type === 'CollectionRejected') data['collectionId'] = `COL-${n}`;
  if (kind.type === 'DistributionFailed') data['destination'] = `carrier-${n % 7}`;
  if (kind.type === 'ValidationError') data['errors'] = [{ field: 'postalCode', message: 'invalid format' }];
  return { type: kind.type, data };
}

/** The machine's busy CPU time in ms (Linux's /proc/stat counts in 1/100 s); undefined elsewhere. */
function machineCpuMs(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user! + nice! + system! + irq! + softirq! + steal!) * 10;
  } catch {
    return undefined;
  }
}

async function countCaptured(tenantId: string): Promise<number> {
  const [row] = await sql<{ n: string }>(
    // Only the capture's rows exist yet: the count reads the tenant's index, not the rows' text.
    `select count(*) as n from exceptions.exceptions where tenant_id = $1`,
    [tenantId],
  );
  return Number(row!.n);
}

export async function runCapture(options: {
  base: string;
  apiKey: string;
  tenantId: string;
  events: number;
  batch: number;
  writers: number;
  repeatEvery: number;
}): Promise<CaptureResult> {
  const { base, apiKey, tenantId, events, batch, writers, repeatEvery } = options;
  const bodies: string[] = [];
  const ids = new Set<string>();
  for (let from = 0; from < events; from += batch) {
    const messages = [];
    for (let i = from; i < Math.min(events, from + batch); i++) {
      const event = inboundEvent(i, repeatEvery);
      ids.add(event.data['transactionId'] as string);
      messages.push({ payload: event.data, headers: { 'ce-type': event.type } });
    }
    bodies.push(JSON.stringify({ namespace: 'interface-exceptions', messages }));
  }
  const cpuBefore = machineCpuMs();
  const started = performance.now();
  let next = 0;
  const writer = async () => {
    while (next < bodies.length) {
      const body = bodies[next++]!;
      const response = await fetch(`${base}/api/v1/wal/write/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
        body,
      });
      const text = await response.text();
      if (response.status !== 202)
        throw new Error(`POST /api/v1/wal/write/batch: ${response.status} ${text.slice(0, 500)}`);
    }
  };
  await Promise.all(Array.from({ length: writers }, writer));
  const writeSeconds = (performance.now() - started) / 1000;
  let captured = 0;
  let lastLog = 0;
  for (;;) {
    captured = await countCaptured(tenantId);
    const elapsed = (performance.now() - started) / 1000;
    if (captured >= ids.size) break;
    if (elapsed > 900) throw new Error(`capture: ${captured} of ${ids.size} exceptions after 900 s`);
    if (elapsed - lastLog >= 5) {
      lastLog = elapsed;
      console.log(`capture: ${captured} of ${ids.size} queryable after ${elapsed.toFixed(0)} s`);
    }
    // Four looks a second: the count itself must not take the capture's CPU.
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = machineCpuMs();
  const cpuMsPerEvent =
    cpuBefore === undefined || cpuAfter === undefined
      ? null
      : Math.round(((cpuAfter - cpuBefore) / events) * 1000) / 1000;
  const result = {
    events,
    distinct: ids.size,
    batch,
    writers,
    writeSeconds: Math.round(writeSeconds * 100) / 100,
    seconds: Math.round(seconds * 100) / 100,
    writesPerSecond: Math.round(events / writeSeconds),
    capturedPerSecond: Math.round(events / seconds),
    cpuMsPerEvent,
  };
  console.log(
    `capture: ${events} events (${ids.size} transaction ids) written in ${result.writeSeconds} s, all queryable after ${result.seconds} s: ${result.capturedPerSecond}/s; machine CPU ${cpuMsPerEvent ?? '–'} ms per event`,
  );
  return result;
}
