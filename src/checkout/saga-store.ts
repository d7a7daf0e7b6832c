import { type Selectable, sql } from 'kysely';
import type { OrdersApi } from '../orders/index.ts';
import { together } from '../platform/db/index.ts';
import { uuidv7 } from '../platform/uuidv7.ts';
import type { CheckoutTrx, SagaFailure, SagaStatus, SagaStepsTable, SagasTable, StepName } from './tables.ts';

/** A saga row as the runner works with it. */
export type Saga = {
  id: string;
  tenantId: string;
  orderId: string;
  cartId: string | null;
  status: SagaStatus;
  step: StepName;
  payment: { provider: string; token: string } | null;
  /** The reservation whose units the order takes (a flash sale's pool), or null: available stock. */
  stockPool: string | null;
  failure: SagaFailure | null;
  cancelRequested: { actor: string; reason: string } | null;
  deadlineAt: Date | null;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
  /** The saga's watchdog (watchdog.ts `chain`), null while the one its checkout wrote goes on. */
  watchdog: string | null;
};

export type SagaStep = {
  id: string;
  step: StepName;
  action: 'invoke' | 'compensate';
  attempt: number;
  status: 'started' | 'succeeded' | 'failed';
  output: unknown;
  error: { code: string; message: string } | null;
  startedAt: Date;
  finishedAt: Date | null;
};

const parsed = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T;
const date = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

function toSaga(row: Selectable<SagasTable>): Saga {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    orderId: row.order_id,
    cartId: row.cart_id,
    status: row.status,
    step: row.step,
    payment: parsed(row.payment),
    stockPool: row.stock_pool ?? null,
    failure: parsed(row.failure),
    cancelRequested: parsed(row.cancel_requested),
    deadlineAt: date(row.deadline_at),
    leaseOwner: row.lease_owner,
    leaseUntil: date(row.lease_until),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    finishedAt: date(row.finished_at),
    watchdog: row.watchdog ?? null,
  };
}

function toStep(row: Selectable<SagaStepsTable>): SagaStep {
  return {
    id: row.id,
    step: row.step,
    action: row.action,
    attempt: row.attempt,
    status: row.status,
    output: parsed(row.output),
    error: parsed(row.error),
    startedAt: new Date(row.started_at),
    finishedAt: date(row.finished_at),
  };
}

const json = (value: unknown) => JSON.stringify(value);

/**
 * A new saga at its first step, or past validate when `validated` (the creator's own check, logged
 * as that step's output); `lease`: the creator runs it first (no other runner takes it meanwhile).
 */
export async function insertSaga(
  trx: CheckoutTrx,
  saga: {
    id: string;
    tenantId: string;
    orderId: string;
    cartId: string | null;
    payment: Saga['payment'];
    stockPool?: string | null;
  },
  lease: { owner: string; until: Date } | undefined,
  validated?: unknown,
): Promise<Saga> {
  const values = {
    id: saga.id,
    tenant_id: saga.tenantId,
    order_id: saga.orderId,
    cart_id: saga.cartId,
    status: 'running' as const,
    step: validated === undefined ? ('validate' as const) : ('reserve' as const),
    payment: json(saga.payment),
    stock_pool: saga.stockPool ?? null,
    failure: json(null),
    cancel_requested: json(null),
    deadline_at: null,
    lease_owner: lease?.owner ?? null,
    lease_until: lease?.until ?? null,
    finished_at: null,
  };
  // The validate step's log row goes in with the saga, in the same statement.
  const row =
    validated === undefined
      ? await trx.insertInto('checkout.sagas').values(values).returningAll().executeTakeFirstOrThrow()
      : await trx
          .with('validated', (db) =>
            db.insertInto('checkout.saga_steps').values({
              id: uuidv7(),
              tenant_id: saga.tenantId,
              saga_id: saga.id,
              step: 'validate',
              action: 'invoke',
              attempt: 1,
              status: 'succeeded',
              output: json(validated),
              error: json(null),
              finished_at: sql<Date>`now()`,
            }),
          )
          .insertInto('checkout.sagas')
          .values(values)
          .returningAll()
          .executeTakeFirstOrThrow();
  return toSaga(row);
}

/** The saga by its id or its order's id; `lock` takes its row lock. */
export async function findSaga(
  trx: CheckoutTrx,
  by: { id: string } | { orderId: string },
  lock = false,
): Promise<Saga | undefined> {
  let query = trx.selectFrom('checkout.sagas').selectAll();
  query = 'id' in by ? query.where('id', '=', by.id) : query.where('order_id', '=', by.orderId);
  if (lock) query = query.forUpdate();
  const row = await query.executeTakeFirst();
  return row ? toSaga(row) : undefined;
}

/**
 * The saga's row locked behind its order's, in one round trip: the order first, as a cancel takes
 * them (cancel-order.ts). A run's transaction that writes both rows locks them so: one that took
 * the saga first and then waited for the order could deadlock with a cancel that holds the order
 * and waits for the saga (`lock-order.test.ts`).
 */
export async function lockOrderThenSaga(
  trx: CheckoutTrx,
  orders: Pick<OrdersApi, 'lock'>,
  saga: Pick<Saga, 'id' | 'tenantId' | 'orderId'>,
): Promise<Saga | undefined> {
  const [, locked] = await together([
    orders.lock(trx, saga.tenantId, saga.orderId),
    findSaga(trx, { id: saga.id }, true),
  ]);
  return locked;
}

/**
 * Takes the saga for `owner` until `until` when no other runner holds an unexpired lease and it
 * is not finished; undefined when someone else holds it (or nothing is left to do).
 */
export async function takeLease(
  trx: CheckoutTrx,
  sagaId: string,
  owner: string,
  untilMs: number,
): Promise<Saga | undefined> {
  const row = await trx
    .updateTable('checkout.sagas')
    .set({
      lease_owner: owner,
      lease_until: sql<Date>`now() + make_interval(secs => ${untilMs / 1000})`,
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', sagaId)
    .where('status', 'in', ['running', 'compensating'])
    .where((eb) =>
      eb.or([
        eb('lease_until', 'is', null),
        eb('lease_until', '<', sql<Date>`now()`),
        eb('lease_owner', '=', owner),
      ]),
    )
    .returningAll()
    .executeTakeFirst();
  return row ? toSaga(row) : undefined;
}

export type SagaChanges = {
  status?: SagaStatus;
  step?: StepName;
  payment?: Saga['payment'];
  failure?: SagaFailure | null;
  cancelRequested?: Saga['cancelRequested'];
  deadlineAt?: Date | null;
  leaseOwner?: string | null;
  leaseUntil?: Date | null;
  finishedAt?: Date | null;
  watchdog?: string | null;
};

export async function updateSaga(trx: CheckoutTrx, sagaId: string, changes: SagaChanges): Promise<Saga> {
  return (await updateSagaLogged(trx, sagaId, changes)).saga;
}

/** Log writes that go out with a saga's change, in its statement. */
export type SagaLog = {
  /** Records the outcome of this started attempt (finishStep). */
  finish?: { stepId: string; outcome: StepResult };
  /** Records a new attempt of `step`: started, or whole, with its outcome, when given. */
  attempt?: { tenantId: string; step: StepName; action: 'invoke' | 'compensate'; outcome?: StepResult };
};

/**
 * updateSaga, with the log writes of `log` in the same statement (one round trip): `logged` is
 * the attempt it recorded.
 */
export async function updateSagaLogged(
  trx: CheckoutTrx,
  sagaId: string,
  changes: SagaChanges,
  log: SagaLog = {},
): Promise<{ saga: Saga; logged?: { id: string; attempt: number } }> {
  const sets = [sql`updated_at = now()`];
  if (changes.status !== undefined) sets.push(sql`status = ${changes.status}`);
  if (changes.step !== undefined) sets.push(sql`step = ${changes.step}`);
  if (changes.payment !== undefined) sets.push(sql`payment = ${json(changes.payment)}::jsonb`);
  if (changes.failure !== undefined) sets.push(sql`failure = ${json(changes.failure)}::jsonb`);
  if (changes.cancelRequested !== undefined)
    sets.push(sql`cancel_requested = ${json(changes.cancelRequested)}::jsonb`);
  if (changes.deadlineAt !== undefined) sets.push(sql`deadline_at = ${changes.deadlineAt}`);
  if (changes.leaseOwner !== undefined) sets.push(sql`lease_owner = ${changes.leaseOwner}`);
  if (changes.leaseUntil !== undefined) sets.push(sql`lease_until = ${changes.leaseUntil}`);
  if (changes.finishedAt !== undefined) sets.push(sql`finished_at = ${changes.finishedAt}`);
  if (changes.watchdog !== undefined) sets.push(sql`watchdog = ${changes.watchdog}`);
  const ctes = [];
  if (log.finish) {
    const { stepId, outcome } = log.finish;
    ctes.push(sql`finished as (
      update checkout.saga_steps set status = ${outcome.status}, output = ${outputOf(outcome)}::jsonb,
        error = ${errorOf(outcome)}::jsonb, finished_at = now()
      where id = ${stepId})`);
  }
  const id = uuidv7();
  if (log.attempt) {
    const { tenantId, step, action, outcome } = log.attempt;
    ctes.push(sql`logged as (
      insert into checkout.saga_steps (id, tenant_id, saga_id, step, action, attempt, status, output, error, finished_at)
      select ${id}, ${tenantId}, ${sagaId}, ${step}, ${action}, coalesce(max(attempt), 0) + 1,
        ${outcome?.status ?? 'started'}, ${outcome ? outputOf(outcome) : null}::jsonb,
        ${outcome ? errorOf(outcome) : null}::jsonb, ${outcome ? sql`now()` : sql`null`}
      from checkout.saga_steps where saga_id = ${sagaId} and step = ${step} and action = ${action}
      returning attempt)`);
  }
  const result = await sql<Selectable<SagasTable> & { logged_attempt: number | null }>`
    ${ctes.length > 0 ? sql`with ${sql.join(ctes)} ` : sql``}update checkout.sagas set ${sql.join(sets)}
    where id = ${sagaId}
    returning *, ${log.attempt ? sql`(select attempt from logged)` : sql`null::int`} as logged_attempt`.execute(
    trx,
  );
  const row = result.rows[0];
  if (!row) throw new Error(`saga ${sagaId} vanished`);
  const saga = toSaga(row);
  return log.attempt ? { saga, logged: { id, attempt: Number(row.logged_attempt) } } : { saga };
}

const outputOf = (outcome: StepResult) =>
  json(outcome.status === 'succeeded' ? (outcome.output ?? null) : null);
const errorOf = (outcome: StepResult) => json(outcome.status === 'failed' ? outcome.error : null);

type StepResult =
  | { status: 'succeeded'; output?: unknown }
  | { status: 'failed'; error: { code: string; message: string } };

/** Records the outcome of a started attempt. */
export async function finishStep(trx: CheckoutTrx, stepId: string, outcome: StepResult): Promise<void> {
  await trx
    .updateTable('checkout.saga_steps')
    .set({
      status: outcome.status,
      output: outcome.status === 'succeeded' ? json(outcome.output ?? null) : json(null),
      error: outcome.status === 'failed' ? json(outcome.error) : json(null),
      finished_at: sql<Date>`now()`,
    })
    .where('id', '=', stepId)
    .execute();
}

/** The saga's transaction log, oldest first. */
export async function listSteps(trx: CheckoutTrx, sagaId: string): Promise<SagaStep[]> {
  const rows = await trx
    .selectFrom('checkout.saga_steps')
    .selectAll()
    .where('saga_id', '=', sagaId)
    .orderBy('started_at')
    .orderBy('id')
    .execute();
  return rows.map(toStep);
}
