import type { ColumnType, Kysely, Transaction } from 'kysely';

type Json<T> = ColumnType<T, string, string>;

/** The saga's steps, in the order they run forward. */
export const STEP_NAMES = ['validate', 'reserve', 'authorize', 'confirm'] as const;
export type StepName = (typeof STEP_NAMES)[number];

export type SagaStatus = 'running' | 'compensating' | 'completed' | 'failed' | 'cancelled';

/** Why a saga compensated: the order's failure reason (or `cancelled`), its problem code and text. */
export type SagaFailure = { reason: string; code: string; message: string };

/** Migration 0027. */
export type SagasTable = {
  id: string;
  tenant_id: string;
  order_id: string;
  cart_id: string | null;
  status: SagaStatus;
  step: StepName;
  payment: Json<{ provider: string; token: string } | null> | null;
  /** Migration 0030: the reservation key of the pool the order's units come from (a flash sale's). */
  stock_pool: ColumnType<string | null, string | null | undefined, string | null>;
  failure: Json<SagaFailure | null> | null;
  cancel_requested: Json<{ actor: string; reason: string } | null> | null;
  deadline_at: ColumnType<Date | null, Date | null, Date | null>;
  lease_owner: string | null;
  lease_until: ColumnType<Date | null, Date | null, Date | null>;
  created_at: ColumnType<Date, Date | undefined, never>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
  finished_at: ColumnType<Date | null, Date | null, Date | null>;
  /** Migration 0060: the saga's watchdog (watchdog.ts), null while the one its checkout wrote goes on. */
  watchdog: ColumnType<string | null, string | null | undefined, string | null>;
};

export type SagaStepsTable = {
  id: string;
  tenant_id: string;
  saga_id: string;
  step: StepName;
  action: 'invoke' | 'compensate';
  attempt: number;
  status: 'started' | 'succeeded' | 'failed';
  output: Json<unknown> | null;
  error: Json<{ code: string; message: string } | null> | null;
  started_at: ColumnType<Date, Date | undefined, never>;
  finished_at: ColumnType<Date | null, Date | null, Date | null>;
};

/** Migration 0060: sagas compensating at that release, each given a watchdog as a process starts. */
export type WatchdogBackfillTable = { saga_id: string; tenant_id: string; order_id: string };

export type CheckoutTables = {
  'checkout.sagas': SagasTable;
  'checkout.saga_steps': SagaStepsTable;
  'checkout.watchdog_backfill': WatchdogBackfillTable;
};
export type CheckoutDb = Kysely<CheckoutTables>;
/** A transaction of one tenant (withTenant) over the checkout's tables. */
export type CheckoutTrx = Transaction<CheckoutTables>;
