import type { ColumnType, Kysely, Transaction } from 'kysely';

type Timestamp = ColumnType<Date | string, Date | string | undefined, Date | string>;
type Money = ColumnType<string | number, number, number>;

export type ChargeStatus = 'pending' | 'authorized' | 'captured' | 'voided' | 'declined' | 'failed';

/** Migration 0025: the test PSP's own books (schema test_psp), reached as the owner only. */
export type TestPspTables = {
  'test_psp.settings': { id: boolean; webhook_secret: string };
  'test_psp.charges': {
    id: string;
    merchant_id: string;
    idempotency_key: string;
    amount: Money;
    currency: string | null;
    token: string | null;
    status: ChargeStatus;
    decline_code: string | null;
    captured_amount: ColumnType<string | number, number | undefined, number>;
    refunded_amount: ColumnType<string | number, number | undefined, number>;
    created_at: Timestamp;
    updated_at: Timestamp;
  };
  'test_psp.operations': {
    id: string;
    merchant_id: string;
    idempotency_key: string;
    kind: 'authorize' | 'capture' | 'void' | 'refund';
    charge_id: string | null;
    amount: ColumnType<string | number | null, number | null, number | null>;
    /** The first answer, replayed to the same key: JSON text in, parsed out. */
    result: ColumnType<unknown, string, string>;
    created_at: Timestamp;
  };
};

export type TestPspDb = Kysely<TestPspTables>;
export type TestPspTrx = Transaction<TestPspTables>;
