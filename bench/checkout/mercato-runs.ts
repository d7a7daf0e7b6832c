/**
 * Mercato's parts of `npm run bench:checkout`: a single client's checkouts one after another
 * (`single`), 64 customers each looping whole checkouts (`flows`), and 64 clients that only
 * `POST /api/v1/orders` on carts prepared beforehand (`sagas`); then what the database holds is
 * checked against the answers.
 */
import { quietAndAnalyze, sql } from '../commerce/setup.ts';
import { clientOf } from './client.ts';
import { CALLS, checkout, placeOrder, prepareCart } from './flow.ts';
import { loop, type Tally } from './loop.ts';
import { CLIENTS, FLOWS, pairs, type Shop, STOCK, WARMUP_FLOWS } from './setup.ts';

/**
 * Every 201 `completed` answer Mercato gave in this run, warm-ups included, and every 202 (an order
 * placed whose saga was still running when the answer went): what the check holds the database to.
 */
let answered = 0;
let pending = 0;
const counted = (tally: Tally) => {
  answered += tally.completed;
  for (const [problem, n] of Object.entries(tally.problems)) {
    if (problem.startsWith(`${CALLS[5]}: 202`)) pending += n;
  }
  return tally;
};
/** When the single client's timed checkouts ran, to find their sagas' steps afterwards. */
let singleWindow: { from: Date; to: Date } | undefined;

/** WARMUP_FLOWS untimed checkouts, then FLOWS timed, by one client. */
export async function runSingle(base: string, shop: Shop): Promise<Tally> {
  const client = clientOf(base);
  const next = pairs(1);
  try {
    const one = () => () => checkout(client, shop, next());
    counted(await loop({ name: 'single client, warm-up', clients: 1, count: WARMUP_FLOWS, next: one }));
    const from = new Date();
    const tally = counted(
      await loop({ name: 'single client, whole checkouts', clients: 1, count: FLOWS, next: one }),
    );
    singleWindow = { from, to: new Date() };
    return tally;
  } finally {
    client.close();
  }
}

/**
 * A measured run with the sagas the server completed while it ran (`checkout.sagas.finished_at`
 * within it), answered 201 or not: an order answered 202 finishes later, and is counted there.
 */
export type MercatoTally = Tally & { sagasFinished: number; sagasPerSecond: number };

async function measured(tenantId: string, run: () => Promise<Tally>): Promise<MercatoTally> {
  const from = new Date();
  const tally = await run();
  const to = new Date();
  const [row] = await sql<{ n: string }>(
    `select count(*) as n from checkout.sagas
     where tenant_id = $1 and status = 'completed' and finished_at between $2 and $3`,
    [tenantId, from, to],
  );
  const sagasFinished = Number(row!.n);
  const seconds = Math.max(0.001, (to.getTime() - from.getTime()) / 1000);
  return { ...tally, sagasFinished, sagasPerSecond: Math.round((sagasFinished / seconds) * 10) / 10 };
}

/** CLIENTS customers looping whole checkouts: `warmup` s untimed, then `seconds` s. */
export async function runFlows(
  base: string,
  shop: Shop,
  warmup: number,
  seconds: number,
): Promise<MercatoTally> {
  const client = clientOf(base);
  const streams = Array.from({ length: CLIENTS }, (_, i) => pairs(100 + i));
  const next = (c: number) => () => checkout(client, shop, streams[c]!());
  try {
    if (warmup > 0)
      counted(await loop({ name: `${CLIENTS} customers, warm-up`, clients: CLIENTS, seconds: warmup, next }));
    return await measured(shop.tenantId, async () =>
      counted(await loop({ name: `${CLIENTS} customers, whole checkouts`, clients: CLIENTS, seconds, next })),
    );
  } finally {
    client.close();
  }
}

/**
 * `carts` carts made ready first (calls 1 to 5, CLIENTS at a time, untimed); then CLIENTS clients
 * only `POST /api/v1/orders`, one prepared cart each time: 2 per client as a warm-up, then for
 * `seconds` s or until the carts run out.
 */
export async function runSagas(
  base: string,
  shop: Shop,
  carts: number,
  seconds: number,
): Promise<MercatoTally & { carts: number }> {
  const client = clientOf(base);
  const next = pairs(1000);
  const tokens: string[] = [];
  try {
    const prepared = await loop({
      name: `${carts + CLIENTS * 2} carts prepared`,
      clients: CLIENTS,
      count: carts + CLIENTS * 2,
      next: () => async () => {
        const cart = await prepareCart(client, shop, next());
        if (cart.token && !cart.problem) tokens.push(cart.token);
        return {
          ok: Boolean(cart.token && !cart.problem),
          ms: 0,
          ...(cart.problem ? { problem: cart.problem } : {}),
        };
      },
    });
    if (prepared.completed < CLIENTS * 2)
      throw new Error(`only ${prepared.completed} carts could be prepared`);
    // Thousands of carts were just written: analyzed, as autovacuum would have by now (else each
    // order reads its cart's lines by a sequential scan planned for the few rows seen before).
    await quietAndAnalyze('carts prepared');
    const order = () => {
      const token = tokens.pop();
      return token ? () => placeOrder(client, token) : undefined;
    };
    counted(
      await loop({
        name: `${CLIENTS} clients, POST /orders warm-up`,
        clients: CLIENTS,
        count: CLIENTS * 2,
        next: order,
      }),
    );
    const tally = await measured(shop.tenantId, async () =>
      counted(
        await loop({ name: `${CLIENTS} clients, POST /orders only`, clients: CLIENTS, seconds, next: order }),
      ),
    );
    return { ...tally, carts: prepared.completed - CLIENTS * 2 };
  } finally {
    client.close();
  }
}

/** What Mercato's database says was sold, beside the answers; one line per finding. */
export async function checkMercato(tenantId: string): Promise<{ lines: string[]; agree: boolean }> {
  const orders = await sql<{ status: string; n: string }>(
    'select status, count(*) as n from orders.orders where tenant_id = $1 group by status order by status',
    [tenantId],
  );
  const completed = Number(orders.find((r) => r.status === 'completed')?.n ?? 0);
  const [stock] = await sql<{ reserved: string; sold: string }>(
    `select coalesce(sum(reserved), 0) as reserved, coalesce(sum($2::int - on_hand), 0) as sold
     from inventory.items where tenant_id = $1`,
    [tenantId, STOCK],
  );
  const reserved = Number(stock!.reserved);
  const sold = Number(stock!.sold);
  // Orders answered 202 may have completed since; none completed that was not placed.
  const agree =
    completed >= answered && completed <= answered + pending && sold === completed * 2 && reserved === 0;
  const lines = [
    `Mercato: ${answered} checkouts answered 201 \`completed\` and ${pending} answered 202 (still running) in the` +
      ` whole run, warm-ups included; orders in the database by status afterwards:` +
      ` ${orders.map((r) => `${r.status} ${r.n}`).join(', ') || 'none'}; units sold by the stock items ${sold}` +
      ` (2 per completed order: ${completed * 2}), still reserved ${reserved}: ${agree ? 'they agree' : 'they DISAGREE'}.`,
  ];
  const steps = singleWindow
    ? await sagaSteps(tenantId, singleWindow).catch((error) => {
        console.error(`saga steps: ${error instanceof Error ? error.message : error}`);
        return undefined;
      })
    : undefined;
  if (steps) lines.push(steps);
  return { agree, lines };
}

/** Where the single client's sagas spent their time, from the saga's own log (medians). */
async function sagaSteps(tenantId: string, window: { from: Date; to: Date }): Promise<string | undefined> {
  const steps = await sql<{ step: string; ms: number; n: string }>(
    `select s.step, percentile_cont(0.5) within group (order by extract(epoch from s.finished_at - s.started_at) * 1000) as ms,
            count(*) as n
     from checkout.saga_steps s join checkout.sagas g on g.id = s.saga_id
     where g.tenant_id = $1 and g.created_at between $2 and $3 and s.action = 'invoke' and s.status = 'succeeded'
     group by s.step order by min(s.started_at)`,
    [tenantId, window.from, window.to],
  );
  const [saga] = await sql<{ ms: number; n: string }>(
    `select percentile_cont(0.5) within group (order by extract(epoch from finished_at - created_at) * 1000) as ms,
            count(*) as n
     from checkout.sagas where tenant_id = $1 and created_at between $2 and $3 and status = 'completed'`,
    [tenantId, window.from, window.to],
  );
  if (steps.length === 0 || !saga) return undefined;
  const ms = (n: number) => `${Math.round(n * 10) / 10} ms`;
  return (
    `Where the single client's sagas spent their time (medians of ${saga.n} sagas, from \`checkout.saga_steps\`,` +
    ` each step from its logged start to its logged end): ${steps.map((s) => `${s.step} ${ms(s.ms)}`).join(', ')};` +
    ` the saga from its row's creation to its end ${ms(saga.ms)}.`
  );
}
