import { describe, expect, it } from 'vitest';
import { callServer, loadUntilKilled } from '../cli/mercato-process.ts';
import {
  crashServers,
  embeddedDataDir,
  postgresClone,
  type ServerStorage,
  testDatabaseKind,
  until,
} from '../platform/testing/index.ts';

const WRITERS = 8;
const BATCH = 25;
const LOAD_MS = 1_500;
const KILL_AFTER_MS = 750;

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Every exception of the tenant whose transaction id starts with `prefix`: id → occurrences. */
async function capturedOf(base: string, token: string, prefix: string): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  let cursor: string | null = null;
  do {
    const query: string = `limit=100&interfaceType=ORDER${cursor ? `&cursor=${cursor}` : ''}`;
    const response = await callServer(base, 'GET', `/api/v1/exceptions?${query}`, bearer(token));
    expect(response.status).toBe(200);
    const page = response.body as {
      items: { transactionId: string; occurrences: number }[];
      nextCursor: string | null;
    };
    for (const item of page.items) {
      if (item.transactionId.startsWith(prefix)) found.set(item.transactionId, item.occurrences);
    }
    cursor = page.nextCursor;
  } while (cursor);
  return found;
}

// kill -9 of the real server while tenants' systems write to interface-exceptions, each write
// captured in its own transaction (inline delivery): after a restart on the same data, every
// acknowledged (202) event is an exception, each captured exactly once.
function crashSuite(storage: () => Promise<ServerStorage>) {
  const crash = crashServers({ storage });

  it('captures every acknowledged inbound event exactly once after a kill -9', async () => {
    const first = await crash.start();
    const token = await crash.adminToken(first.base);

    const acked = new Set<string>();
    const { failed, exited } = await loadUntilKilled(
      first.server,
      { writers: WRITERS, loadMs: LOAD_MS, killAfterMs: KILL_AFTER_MS },
      async (w, n) => {
        const ids = Array.from({ length: BATCH }, (_, i) => `CRASH-${w}-${n}-${i}`);
        const response = await callServer(first.base, 'POST', '/api/v1/wal/write/batch', bearer(token), {
          namespace: 'interface-exceptions',
          messages: ids.map((transactionId) => ({
            messageId: transactionId,
            payload: { transactionId, orderId: `SO-${transactionId}`, reason: 'credit limit reached' },
            headers: { 'ce-type': 'OrderRejected' },
          })),
        });
        if (response.status !== 202) return false;
        for (const id of ids) acked.add(id);
        return true;
      },
    );
    expect(exited).toBe('SIGKILL');
    expect(acked.size).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(0); // the kill landed in the middle of the load

    const second = await crash.start();
    const again = await crash.adminToken(second.base);
    // Anything the engine still had to deliver (none, unless a capture fell back) lands soon.
    let captured = new Map<string, number>();
    await until(
      async () => {
        captured = await capturedOf(second.base, again, 'CRASH-');
        return [...acked].every((id) => captured.has(id));
      },
      `all ${acked.size} acknowledged events captured`,
      60_000,
    );
    expect([...acked].filter((id) => !captured.has(id))).toEqual([]);
    // Exactly once: no event counted twice, acknowledged or not (a write whose answer the kill
    // cut may have committed: then it is captured, once).
    expect([...captured.values()].filter((n) => n !== 1)).toEqual([]);

    expect(await crash.stop(second.server), second.server.output()).toBe(0);
  }, 240_000);
}

describe.runIf(testDatabaseKind() === 'pglite')(
  'exception capture survives kill -9 (embedded PGlite)',
  () => {
    crashSuite(() => embeddedDataDir('mercato-exceptions-crash-'));
  },
);

describe.runIf(testDatabaseKind() === 'postgres')('exception capture survives kill -9 (PostgreSQL)', () => {
  crashSuite(postgresClone);
});
