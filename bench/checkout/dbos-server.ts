/**
 * The DBOS peer of `npm run bench:checkout`, a child process of its own (as Mercato's server is):
 * Fastify, and a DBOS durable workflow (`@dbos-inc/dbos-sdk`) per `POST /checkout`, awaited before
 * the answer. The workflow is the checkout's three steps on tables of its own (schema `shop`) in
 * the database DATABASE_URL names, which also holds DBOS's system tables (schema `dbos`):
 * - reserve: in one transaction, `reserved = reserved + q` on each of the two stock rows while
 *   `on_hand - reserved >= q` (in id order), and the order row (status `reserved`, its total);
 * - pay: a simulated PSP, one charge row whose idempotency key is the workflow id;
 * - confirm: in one transaction, the order to `completed` and its stock committed
 *   (`on_hand -= q, reserved -= q`).
 * DBOS checkpoints the workflow's start, each step's output and its end in the system tables, so a
 * crash resumes it after the last finished step; each step is also safe to run twice (the order
 * row, the charge's key and the status guard make a second run a no-op). The Idempotency-Key
 * header is the workflow id: the same key again is the same workflow, answered from its record.
 *
 * 201 {id, status: 'completed', total}; 409 {id, status: 'failed', reason: 'out_of_stock'}.
 * Env: DATABASE_URL, BENCH_DBOS_POOL (the tables' pool, 10), BENCH_DBOS_SYSTEM_POOL (DBOS's, 10),
 * BENCH_VARIANTS and BENCH_STOCK (the stock rows made at start: ids 0..n-1, each `on_hand` n).
 * Prints `DBOS http://host:port` once listening. (node-postgres's DeprecationWarning "Calling
 * client.query() when the client is already executing a query" at start is DBOS's: its system pool
 * sets idle_in_transaction_session_timeout on each new connection without awaiting it.)
 */
import { DBOS } from '@dbos-inc/dbos-sdk';
import Fastify from 'fastify';
import pg from 'pg';

const env = process.env;
const url = env['DATABASE_URL']!;
const SHIPPING = 490;
const pool = new pg.Pool({ connectionString: url, max: Number(env['BENCH_DBOS_POOL'] ?? 10) });

await pool.query(`
  create schema if not exists shop;
  create table if not exists shop.stock (
    id integer primary key,
    price integer not null check (price >= 0),
    on_hand integer not null check (on_hand >= 0),
    reserved integer not null default 0 check (reserved >= 0 and reserved <= on_hand)
  );
  create table if not exists shop.orders (
    id text primary key,
    status text not null check (status in ('reserved', 'completed', 'failed')),
    lines jsonb not null,
    total integer not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
  );
  create table if not exists shop.charges (
    idempotency_key text primary key,
    order_id text not null,
    amount integer not null,
    currency char(3) not null,
    status text not null,
    created_at timestamptz not null default now()
  )`);
// The same prices as Mercato's bench products (bench/checkout/setup.ts priceOf).
await pool.query(
  `insert into shop.stock (id, price, on_hand)
   select g, 1000 + (g % 50) * 100, $2 from generate_series(0, $1::int - 1) g
   on conflict (id) do update set price = excluded.price, on_hand = excluded.on_hand, reserved = 0`,
  [Number(env['BENCH_VARIANTS'] ?? 200), Number(env['BENCH_STOCK'] ?? 1_000_000)],
);

type Line = { id: number; quantity: number };
type Result = { id: string; status: 'completed' | 'failed'; total?: number; reason?: string };

/** Runs `work` in a transaction of a pooled connection. */
async function transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const result = await work(client);
    await client.query('commit');
    return result;
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

class OutOfStock extends Error {}
class AlreadyDone extends Error {}
const byId = (lines: Line[]) => [...lines].sort((a, b) => a.id - b.id);

async function reserve(orderId: string, lines: Line[]): Promise<{ ok: boolean; total: number }> {
  try {
    return await transaction(async (client) => {
      let subtotal = 0;
      for (const line of byId(lines)) {
        const { rows } = await client.query<{ price: number }>({
          name: 'reserve',
          text: `update shop.stock set reserved = reserved + $2
                 where id = $1 and on_hand - reserved >= $2 returning price`,
          values: [line.id, line.quantity],
        });
        if (rows.length !== 1) throw new OutOfStock();
        subtotal += rows[0]!.price * line.quantity;
      }
      const total = subtotal + SHIPPING;
      const inserted = await client.query({
        name: 'order',
        text: `insert into shop.orders (id, status, lines, total) values ($1, 'reserved', $2, $3)
               on conflict (id) do nothing`,
        values: [orderId, JSON.stringify(lines), total],
      });
      // Run before (a crash after its commit, before DBOS's checkpoint): undo this run's holds.
      if (inserted.rowCount !== 1) throw new AlreadyDone();
      return { ok: true, total };
    });
  } catch (error) {
    if (error instanceof AlreadyDone) {
      const { rows } = await pool.query<{ status: string; total: number }>(
        'select status, total from shop.orders where id = $1',
        [orderId],
      );
      return { ok: rows[0]!.status !== 'failed', total: rows[0]!.total };
    }
    if (!(error instanceof OutOfStock)) throw error;
    await pool.query(
      `insert into shop.orders (id, status, lines, total) values ($1, 'failed', $2, 0) on conflict (id) do nothing`,
      [orderId, JSON.stringify(lines)],
    );
    return { ok: false, total: 0 };
  }
}
/**
 * The simulated PSP: one charge per idempotency key, committed without waiting for the WAL's
 * flush, as Mercato's test PSP commits its calls (migration 0066): a PSP's latency is its own.
 */
async function pay(orderId: string, amount: number): Promise<void> {
  await pool.query({
    name: 'charge',
    text: `insert into shop.charges (idempotency_key, order_id, amount, currency, status)
           select $1, $1, $2, 'EUR', 'captured'
           from (select set_config('synchronous_commit', 'off', true)) unflushed
           on conflict (idempotency_key) do nothing`,
    values: [orderId, amount],
  });
}

async function confirm(orderId: string, lines: Line[]): Promise<void> {
  await transaction(async (client) => {
    const confirmed = await client.query({
      name: 'confirm',
      text: `update shop.orders set status = 'completed', updated_at = now() where id = $1 and status = 'reserved'`,
      values: [orderId],
    });
    if (confirmed.rowCount !== 1) return;
    for (const line of byId(lines)) {
      await client.query({
        name: 'commit',
        text: 'update shop.stock set on_hand = on_hand - $2, reserved = reserved - $2 where id = $1',
        values: [line.id, line.quantity],
      });
    }
  });
}

const checkout = DBOS.registerWorkflow(
  async (lines: Line[]): Promise<Result> => {
    const id = DBOS.workflowID!;
    const reserved = await DBOS.runStep(() => reserve(id, lines), { name: 'reserve' });
    if (!reserved.ok) return { id, status: 'failed', reason: 'out_of_stock' };
    await DBOS.runStep(() => pay(id, reserved.total), { name: 'pay' });
    await DBOS.runStep(() => confirm(id, lines), { name: 'confirm' });
    return { id, status: 'completed', total: reserved.total };
  },
  { name: 'checkout' },
);

DBOS.setConfig({
  name: 'bench-checkout',
  applicationVersion: '1',
  systemDatabaseUrl: url,
  systemDatabasePoolSize: Number(env['BENCH_DBOS_SYSTEM_POOL'] ?? 10),
  logLevel: 'warn',
});
await DBOS.launch();

const app = Fastify({ logger: false });
app.post(
  '/checkout',
  {
    schema: {
      headers: {
        type: 'object',
        required: ['idempotency-key'],
        properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 200 } },
      },
      body: {
        type: 'object',
        required: ['lines'],
        additionalProperties: false,
        properties: {
          lines: {
            type: 'array',
            minItems: 1,
            maxItems: 100,
            items: {
              type: 'object',
              required: ['id', 'quantity'],
              additionalProperties: false,
              properties: {
                id: { type: 'integer', minimum: 0 },
                quantity: { type: 'integer', minimum: 1, maximum: 1000 },
              },
            },
          },
        },
      },
    },
  },
  async (request, reply) => {
    const workflowID = request.headers['idempotency-key'] as string;
    const { lines } = request.body as { lines: Line[] };
    const handle = await DBOS.startWorkflow(checkout, { workflowID })(lines);
    const result = await handle.getResult();
    return reply.code(result.status === 'completed' ? 201 : 409).send(result);
  },
);

const address = await app.listen({ port: 0, host: '127.0.0.1' });
console.log(`DBOS ${address}`);
const stop = async () => {
  await app.close();
  await DBOS.shutdown();
  await pool.end();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
