/**
 * The floors of `npm run bench:commerce`, a child process of its own (as Mercato's server is):
 * Fastify and node-postgres doing one plain statement per request, with nothing else (no auth,
 * tenant, row-level security, validation, idempotency, ledger, events or cache).
 * - GET /search?q=term: `select id, title from catalog.products where title ilike '%term%' limit 20`
 *   on the rows Mercato imported (same database);
 * - POST /reserve {"id": "…"}: `update bench_floor.items set reserved = reserved + 1 where id = $1
 *   and on_hand - reserved >= 1`, 200 when a row changed, else 409;
 * - POST /items {"id": "…", "onHand": n}: creates or resets the floor's stock row.
 * DATABASE_URL names the database; BENCH_FLOOR_POOL the pool size (Mercato's default, 20).
 * Prints `FLOOR http://host:port` once listening.
 */
import Fastify from 'fastify';
import pg from 'pg';

const pool = new pg.Pool({
  connectionString: process.env['DATABASE_URL'],
  max: Number(process.env['BENCH_FLOOR_POOL'] ?? 20),
});
await pool.query(`
  create schema if not exists bench_floor;
  create table if not exists bench_floor.items (
    id uuid primary key,
    on_hand int not null check (on_hand >= 0),
    reserved int not null default 0 check (reserved >= 0 and reserved <= on_hand)
  )`);

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

const app = Fastify({ logger: false });
app.get('/search', async (request) => {
  const q = String((request.query as { q?: string }).q ?? '');
  const { rows } = await pool.query({
    name: 'floor-search',
    text: 'select id, title from catalog.products where title ilike $1 limit 20',
    values: [`%${escapeLike(q)}%`],
  });
  return { items: rows };
});
app.post('/reserve', async (request, reply) => {
  const { id } = request.body as { id: string };
  const { rowCount } = await pool.query({
    name: 'floor-reserve',
    text: 'update bench_floor.items set reserved = reserved + 1 where id = $1 and on_hand - reserved >= 1',
    values: [id],
  });
  return rowCount === 1 ? { reserved: 1 } : reply.code(409).send({ code: 'INSUFFICIENT_STOCK' });
});
app.post('/items', async (request) => {
  const { id, onHand } = request.body as { id: string; onHand: number };
  await pool.query(
    `insert into bench_floor.items (id, on_hand) values ($1, $2)
     on conflict (id) do update set on_hand = excluded.on_hand, reserved = 0`,
    [id, onHand],
  );
  return { id, onHand };
});
app.get('/items/:id', async (request) => {
  const { rows } = await pool.query('select on_hand, reserved from bench_floor.items where id = $1', [
    (request.params as { id: string }).id,
  ]);
  return rows[0] ?? null;
});

const url = await app.listen({ port: 0, host: '127.0.0.1' });
console.log(`FLOOR ${url}`);
const stop = async () => {
  await app.close();
  await pool.end();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
