/**
 * The DBOS peer's part of `npm run bench:checkout`: `POST /checkout` (one durable workflow:
 * reserve, pay, confirm; bench/checkout/dbos-server.ts) by a single client, then by CLIENTS
 * clients for the same time as Mercato's `POST /api/v1/orders` run; then its tables and DBOS's
 * workflow records are checked against the answers.
 */
import { randomUUID } from 'node:crypto';
import { sql } from '../commerce/setup.ts';
import { type Client, clientOf, problemOf } from './client.ts';
import { loop, type Outcome, type Tally } from './loop.ts';
import { CLIENTS, dbosUrl, FLOWS, pairs, STOCK, WARMUP_FLOWS } from './setup.ts';

let answered = 0;
const counted = (tally: Tally) => {
  answered += tally.completed;
  return tally;
};

async function saga(client: Client, pair: [number, number]): Promise<Outcome> {
  const reply = await client.send<{ status?: string }>(
    'POST',
    '/checkout',
    { lines: pair.map((id) => ({ id, quantity: 1 })) },
    { 'idempotency-key': randomUUID() },
  );
  const ok = reply.status === 201 && reply.body?.status === 'completed';
  return ok ? { ok, ms: reply.ms } : { ok, ms: reply.ms, problem: `POST /checkout: ${problemOf(reply)}` };
}

export async function runDbos(
  base: string,
  warmup: number,
  seconds: number,
): Promise<{ single: Tally; concurrent: Tally }> {
  const client = clientOf(base);
  try {
    const one = pairs(1);
    const next = () => () => saga(client, one());
    counted(await loop({ name: 'DBOS single client, warm-up', clients: 1, count: WARMUP_FLOWS, next }));
    const single = counted(await loop({ name: 'DBOS single client', clients: 1, count: FLOWS, next }));
    const streams = Array.from({ length: CLIENTS }, (_, i) => pairs(100 + i));
    const many = (c: number) => () => saga(client, streams[c]!());
    if (warmup > 0)
      counted(
        await loop({
          name: `DBOS ${CLIENTS} clients, warm-up`,
          clients: CLIENTS,
          seconds: warmup,
          next: many,
        }),
      );
    const concurrent = counted(
      await loop({ name: `DBOS ${CLIENTS} clients`, clients: CLIENTS, seconds, next: many }),
    );
    return { single, concurrent };
  } finally {
    client.close();
  }
}

/** What the peer's tables and DBOS's workflow records say, beside the answers. */
export async function checkDbos(): Promise<{ lines: string[]; agree: boolean }> {
  const orders = await sql<{ status: string; n: string }>(
    'select status, count(*) as n from shop.orders group by status order by status',
    [],
    dbosUrl,
  );
  const completed = Number(orders.find((r) => r.status === 'completed')?.n ?? 0);
  const [charges] = await sql<{ n: string }>('select count(*) as n from shop.charges', [], dbosUrl);
  const [stock] = await sql<{ reserved: string; sold: string }>(
    `select coalesce(sum(reserved), 0) as reserved, coalesce(sum($1::int - on_hand), 0) as sold from shop.stock`,
    [STOCK],
    dbosUrl,
  );
  const workflows = await sql<{ status: string; n: string }>(
    'select status, count(*) as n from dbos.workflow_status group by status order by status',
    [],
    dbosUrl,
  ).catch(() => []);
  const sold = Number(stock!.sold);
  const reserved = Number(stock!.reserved);
  const agree =
    completed === answered && Number(charges!.n) === completed && sold === completed * 2 && reserved === 0;
  return {
    agree,
    lines: [
      `DBOS: ${answered} sagas answered 201 \`completed\` (warm-ups included); orders by status:` +
        ` ${orders.map((r) => `${r.status} ${r.n}`).join(', ') || 'none'}; charges ${charges!.n};` +
        ` units sold ${sold} (2 per completed order: ${completed * 2}), still reserved ${reserved};` +
        ` DBOS workflows by status: ${workflows.map((r) => `${r.status} ${r.n}`).join(', ') || 'unknown'}:` +
        ` ${agree ? 'they agree' : 'they DISAGREE'}.`,
    ],
  };
}
