/**
 * The floor of a durable HTTP write on this machine, measured in part `http` of `npm run bench:wal`
 * beside Mercato's write route: Fastify, a JSON body, and the 1 KiB payload group-committed (two
 * flushes in flight) into a table of its own with nothing else — no auth, validation, idempotency,
 * receipts, metrics, indexes beyond the key, or delivery. What Mercato spends above it is its own.
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';
import { adminUrl, sqlAt, urlOf } from './wal-common.ts';

const FLOOR_DB = 'mercato_bench_http_floor';

type Pending = { id: string; payload: string; done: (error?: unknown) => void };

/** Serves POST /write on a free port until close(); answers 202 once the row's commit returned. */
export async function startFloorServer(): Promise<{ url: string; close(): Promise<void> }> {
  await sqlAt(adminUrl, `drop database if exists ${FLOOR_DB} with (force)`);
  await sqlAt(adminUrl, `create database ${FLOOR_DB}`);
  const pool = new pg.Pool({ connectionString: urlOf(FLOOR_DB), max: 4 });
  await pool.query('create table messages (id uuid primary key, payload jsonb not null)');
  let queue: Pending[] = [];
  let inFlight = 0;
  const flush = async () => {
    if (inFlight >= 2 || queue.length === 0) return;
    const group = queue;
    queue = [];
    inFlight += 1;
    try {
      const rows = `[${group.map((p) => `{"id":"${p.id}","payload":${p.payload}}`).join(',')}]`;
      await pool.query(
        'insert into messages (id, payload) select id, payload from jsonb_to_recordset($1::jsonb) as x(id uuid, payload jsonb)',
        [rows],
      );
      for (const p of group) p.done();
    } catch (error) {
      for (const p of group) p.done(error);
    } finally {
      inFlight -= 1;
      setImmediate(flush);
    }
  };
  const app = Fastify({ logger: false });
  app.post('/write', async (request, reply) => {
    const id = randomUUID();
    const payload = JSON.stringify((request.body as { payload?: unknown }).payload ?? null);
    await new Promise<void>((resolve, reject) => {
      queue.push({ id, payload, done: (error) => (error ? reject(error) : resolve()) });
      setImmediate(flush);
    });
    return reply.code(202).send({ messageId: id, status: 'accepted' });
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url: `${url}/write`,
    async close() {
      await app.close();
      await pool.end();
      await sqlAt(adminUrl, `drop database if exists ${FLOOR_DB} with (force)`);
    },
  };
}
