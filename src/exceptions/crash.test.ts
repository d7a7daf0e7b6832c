import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  callServer,
  loadUntilKilled,
  type MercatoProcess,
  signInDemoAdmin,
  startMercatoServer,
  stopServers,
} from '../cli/mercato-process.ts';
import { cloneTestDatabase, testDatabaseKind } from '../platform/testing/test-databases.ts';
import { until } from '../platform/testing/until.ts';

const PASSWORD = 'demo-password-1234';
const WRITERS = 8;
const BATCH = 25;
const LOAD_MS = 1_500;
const KILL_AFTER_MS = 750;

type Storage = Record<string, string>;

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
function crashSuite(open: () => Promise<{ storage: Storage; drop(): Promise<void> }>) {
  let storage: Storage;
  let drop: () => Promise<void>;
  const servers: MercatoProcess[] = [];
  const start = () => startMercatoServer({ ...storage, MERCATO_DEMO_PASSWORD: PASSWORD });

  beforeAll(async () => {
    ({ storage, drop } = await open());
  });
  afterAll(async () => {
    await stopServers(servers);
    await drop();
  });

  it('captures every acknowledged inbound event exactly once after a kill -9', async () => {
    const first = await start();
    servers.push(first.server);
    const token = await signInDemoAdmin(first.base, PASSWORD);

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

    const second = await start();
    servers.push(second.server);
    const again = await signInDemoAdmin(second.base, PASSWORD);
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

    second.server.child.kill('SIGTERM');
    expect(await second.server.exited, second.server.output()).toBe(0);
  }, 240_000);
}

describe.runIf(testDatabaseKind() === 'pglite')(
  'exception capture survives kill -9 (embedded PGlite)',
  () => {
    crashSuite(async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'mercato-exceptions-crash-'));
      return {
        storage: { MERCATO_DATA_DIR: dataDir },
        drop: () => rm(dataDir, { recursive: true, force: true }),
      };
    });
  },
);

describe.runIf(testDatabaseKind() === 'postgres')('exception capture survives kill -9 (PostgreSQL)', () => {
  crashSuite(async () => {
    const database = await cloneTestDatabase();
    return { storage: { DATABASE_URL: database.url as string, MERCATO_WORKERS: '1' }, drop: database.drop };
  });
});
