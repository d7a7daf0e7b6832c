import { type RawBuilder, sql } from 'kysely';
import { uuidv7 } from '../../platform/uuidv7.ts';
import { abortable, delay, untilAborted } from './abortable.ts';
import type {
  AuthorizeInput,
  AuthorizeResult,
  CaptureResult,
  PaymentProvider,
  RefundResult,
  VoidResult,
} from './provider.ts';
import type { ChargeStatus, TestPspDb } from './test-psp-tables.ts';

/**
 * The tokens of the test PSP and what each does (card numbers never reach Mercato): any other
 * token is declined as card_declined.
 */
export const TEST_TOKENS = {
  tok_visa: 'authorizes',
  tok_insufficient_funds: 'declines (insufficient_funds)',
  tok_card_declined: 'declines (card_declined)',
  tok_processing_error: 'answers error',
  tok_hang: 'authorizes in the PSP ledger but never answers (until the call is aborted)',
  tok_pending: 'answers pending; settled later by a signed webhook (settlePending)',
} as const;

const newId = (prefix: 'ch_' | 're_') => `${prefix}${uuidv7().replaceAll('-', '')}`;
const CURRENCY = /^[A-Z]{3}$/;
const validAmount = (amount: number) => Number.isSafeInteger(amount) && amount > 0;

/**
 * One call of the PSP: one statement, a function of migration 0040 that claims the call's
 * (merchant, idempotency key) in test_psp.operations, makes its effect on the charge and stores
 * its answer, in the statement's own transaction. The same key again (a retry, across processes
 * and after a crash) answers the stored result without a second effect.
 */
async function call<R>(db: TestPspDb, query: RawBuilder<{ result: unknown }>): Promise<R> {
  const { rows } = await query.execute(db);
  const result = rows[0]?.result;
  return (typeof result === 'string' ? JSON.parse(result) : result) as R;
}

/** The outcome a token asks for. */
function outcomeOf(token: string): { status: ChargeStatus; result: (id: string) => AuthorizeResult } {
  switch (token) {
    case 'tok_visa':
    case 'tok_hang':
      return { status: 'authorized', result: (id) => ({ status: 'authorized', transactionId: id }) };
    case 'tok_pending':
      return { status: 'pending', result: (id) => ({ status: 'pending', transactionId: id }) };
    case 'tok_insufficient_funds':
      return {
        status: 'declined',
        result: () => ({ status: 'declined', code: 'insufficient_funds', message: 'insufficient funds' }),
      };
    case 'tok_processing_error':
      return {
        status: 'failed',
        result: () => ({ status: 'error', message: 'the card network did not process the charge' }),
      };
    default:
      return {
        status: 'declined',
        result: () => ({ status: 'declined', code: 'card_declined', message: 'the card was declined' }),
      };
  }
}

/** The charge an authorization makes, worked out from its input: null when the input is refused. */
function chargeOf(input: AuthorizeInput) {
  if (!validAmount(input.amount) || !CURRENCY.test(input.currency)) {
    return {
      id: null,
      status: null,
      decline: null,
      result: { status: 'error', message: 'amount or currency is invalid' },
    };
  }
  const outcome = outcomeOf(input.token);
  const id = newId('ch_');
  const decline =
    outcome.status === 'declined'
      ? input.token === 'tok_insufficient_funds'
        ? 'insufficient_funds'
        : 'card_declined'
      : null;
  return { id, status: outcome.status, decline, result: outcome.result(id) };
}

/**
 * The `test` provider: a PSP that keeps its own ledger (schema test_psp, written by the functions
 * of migration 0040 in statements of their own, never in the caller's transaction), answers by
 * token (TEST_TOKENS), and adds latencyMs to every call.
 */
export function createTestPsp(db: TestPspDb, latencyMs: number): PaymentProvider {
  const run = async <R>(query: RawBuilder<{ result: unknown }>, signal: AbortSignal): Promise<R> => {
    await delay(latencyMs, signal);
    return abortable(call<R>(db, query), signal);
  };
  return {
    name: 'test',
    async authorize(input, signal) {
      const charge = chargeOf(input);
      const result = await run<AuthorizeResult>(
        sql<{
          result: unknown;
        }>`select test_psp.authorize(${uuidv7()}, ${input.merchantId}, ${input.idempotencyKey},
          ${input.amount}, ${charge.id}, ${input.currency}, ${input.token.slice(0, 200)}, ${charge.status},
          ${charge.decline}, ${JSON.stringify(charge.result)}::jsonb) as result`,
        signal,
      );
      // Recorded (and held) at the PSP, but the answer never comes back.
      if (input.token === 'tok_hang') return untilAborted(signal);
      return result;
    },
    capture: (input, signal) =>
      run<CaptureResult>(
        sql<{
          result: unknown;
        }>`select test_psp.capture(${uuidv7()}, ${input.merchantId}, ${input.idempotencyKey},
          ${input.amount}, ${input.transactionId}) as result`,
        signal,
      ),
    void: (input, signal) =>
      run<VoidResult>(
        sql<{
          result: unknown;
        }>`select test_psp.void(${uuidv7()}, ${input.merchantId}, ${input.idempotencyKey},
          ${input.authorizationKey}, ${newId('ch_')}) as result`,
        signal,
      ),
    refund: (input, signal) =>
      run<RefundResult>(
        sql<{
          result: unknown;
        }>`select test_psp.refund(${uuidv7()}, ${input.merchantId}, ${input.idempotencyKey},
          ${input.amount}, ${input.transactionId}, ${newId('re_')}) as result`,
        signal,
      ),
  };
}
