import { withSystem } from '../../platform/db/index.ts';
import { uuidv7 } from '../../platform/uuidv7.ts';
import { abortable, delay, untilAborted } from './abortable.ts';
import type {
  AuthorizeInput,
  AuthorizeResult,
  CaptureInput,
  CaptureResult,
  PaymentProvider,
  RefundInput,
  RefundResult,
  VoidInput,
  VoidResult,
} from './provider.ts';
import type { ChargeStatus, TestPspDb, TestPspTables, TestPspTrx } from './test-psp-tables.ts';

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

type Kind = TestPspTables['test_psp.operations']['kind'];
type Effect<R> = { result: R; chargeId: string | null };

const newId = (prefix: 'ch_' | 're_') => `${prefix}${uuidv7().replaceAll('-', '')}`;
const CURRENCY = /^[A-Z]{3}$/;
const validAmount = (amount: number) => Number.isSafeInteger(amount) && amount > 0;

/**
 * Runs effect once per (merchant, idempotency key): the operation row is claimed first (a
 * concurrent call with the key waits on the unique index, then finds it), and the same key again
 * answers the stored result, without a second effect.
 */
async function once<R extends { status: string }>(
  trx: TestPspTrx,
  input: { merchantId: string; idempotencyKey: string },
  kind: Kind,
  amount: number | null,
  effect: () => Promise<Effect<R>>,
): Promise<R> {
  const id = uuidv7();
  const claimed = await trx
    .insertInto('test_psp.operations')
    .values({
      id,
      merchant_id: input.merchantId,
      idempotency_key: input.idempotencyKey,
      kind,
      amount,
      result: '{}',
    })
    .onConflict((oc) => oc.constraint('operations_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!claimed) {
    const first = await trx
      .selectFrom('test_psp.operations')
      .select(['kind', 'amount', 'result'])
      .where('merchant_id', '=', input.merchantId)
      .where('idempotency_key', '=', input.idempotencyKey)
      .executeTakeFirstOrThrow();
    const sameRequest =
      first.kind === kind && (first.amount === null ? null : Number(first.amount)) === amount;
    if (!sameRequest) {
      return { status: 'error', message: 'idempotency key already used for another request' } as unknown as R;
    }
    return (typeof first.result === 'string' ? JSON.parse(first.result) : first.result) as R;
  }
  const { result, chargeId } = await effect();
  await trx
    .updateTable('test_psp.operations')
    .set({ result: JSON.stringify(result), charge_id: chargeId })
    .where('id', '=', id)
    .execute();
  return result;
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

async function authorizeCharge(trx: TestPspTrx, input: AuthorizeInput): Promise<Effect<AuthorizeResult>> {
  if (!validAmount(input.amount) || !CURRENCY.test(input.currency)) {
    return { result: { status: 'error', message: 'amount or currency is invalid' }, chargeId: null };
  }
  const outcome = outcomeOf(input.token);
  const id = newId('ch_');
  const inserted = await trx
    .insertInto('test_psp.charges')
    .values({
      id,
      merchant_id: input.merchantId,
      idempotency_key: input.idempotencyKey,
      amount: input.amount,
      currency: input.currency,
      token: input.token.slice(0, 200),
      status: outcome.status,
      decline_code:
        outcome.status === 'declined'
          ? input.token === 'tok_insufficient_funds'
            ? 'insufficient_funds'
            : 'card_declined'
          : null,
    })
    .onConflict((oc) => oc.constraint('charges_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  // A void by this authorization key came first and left its mark: nothing may be held now.
  if (!inserted) return { result: { status: 'error', message: 'authorization was voided' }, chargeId: null };
  return { result: outcome.result(id), chargeId: id };
}

const chargeById = (trx: TestPspTrx, merchantId: string, id: string) =>
  trx
    .selectFrom('test_psp.charges')
    .selectAll()
    .where('merchant_id', '=', merchantId)
    .where('id', '=', id)
    .forUpdate()
    .executeTakeFirst();

const chargeByKey = (trx: TestPspTrx, merchantId: string, key: string) =>
  trx
    .selectFrom('test_psp.charges')
    .selectAll()
    .where('merchant_id', '=', merchantId)
    .where('idempotency_key', '=', key)
    .forUpdate()
    .executeTakeFirst();

const setStatus = (trx: TestPspTrx, id: string, status: ChargeStatus, captured?: number) =>
  trx
    .updateTable('test_psp.charges')
    .set({ status, updated_at: new Date(), ...(captured !== undefined ? { captured_amount: captured } : {}) })
    .where('id', '=', id)
    .execute();

async function captureCharge(trx: TestPspTrx, input: CaptureInput): Promise<Effect<CaptureResult>> {
  const charge = await chargeById(trx, input.merchantId, input.transactionId);
  if (!charge) return { result: { status: 'error', message: 'no such charge' }, chargeId: null };
  if (charge.status !== 'authorized') {
    return { result: { status: 'error', message: `charge is ${charge.status}` }, chargeId: charge.id };
  }
  if (input.amount !== Number(charge.amount)) {
    return {
      result: { status: 'error', message: 'capture the authorized amount in full' },
      chargeId: charge.id,
    };
  }
  await setStatus(trx, charge.id, 'captured', input.amount);
  return { result: { status: 'captured' }, chargeId: charge.id };
}

async function voidCharge(trx: TestPspTrx, input: VoidInput): Promise<Effect<VoidResult>> {
  let charge = await chargeByKey(trx, input.merchantId, input.authorizationKey);
  if (!charge) {
    // Nothing authorized under the key yet: leave a voided mark, so one still in flight is refused.
    const id = newId('ch_');
    await trx
      .insertInto('test_psp.charges')
      .values({
        id,
        merchant_id: input.merchantId,
        idempotency_key: input.authorizationKey,
        amount: 0,
        currency: null,
        token: null,
        status: 'voided',
        decline_code: null,
      })
      .onConflict((oc) => oc.constraint('charges_key').doNothing())
      .execute();
    charge = await chargeByKey(trx, input.merchantId, input.authorizationKey);
    if (!charge) throw new Error('test PSP: the charge of a void vanished');
  }
  if (charge.status === 'captured') {
    return { result: { status: 'error', message: 'charge is captured: refund it' }, chargeId: charge.id };
  }
  if (charge.status === 'pending' || charge.status === 'authorized')
    await setStatus(trx, charge.id, 'voided');
  return { result: { status: 'voided' }, chargeId: charge.id };
}

async function refundCharge(trx: TestPspTrx, input: RefundInput): Promise<Effect<RefundResult>> {
  const charge = await chargeById(trx, input.merchantId, input.transactionId);
  if (!charge) return { result: { status: 'error', message: 'no such charge' }, chargeId: null };
  const left = Number(charge.captured_amount) - Number(charge.refunded_amount);
  if (charge.status !== 'captured' || !validAmount(input.amount) || input.amount > left) {
    return {
      result: {
        status: 'error',
        message: `cannot refund ${input.amount} of a ${charge.status} charge (${left} left)`,
      },
      chargeId: charge.id,
    };
  }
  await trx
    .updateTable('test_psp.charges')
    .set({ refunded_amount: Number(charge.refunded_amount) + input.amount, updated_at: new Date() })
    .where('id', '=', charge.id)
    .execute();
  return { result: { status: 'refunded', refundId: newId('re_') }, chargeId: charge.id };
}

/**
 * The `test` provider: a PSP that keeps its own ledger (schema test_psp, written with withSystem
 * in transactions of its own, never the caller's), answers by token (TEST_TOKENS), and adds
 * latencyMs to every call.
 */
export function createTestPsp(db: TestPspDb, latencyMs: number): PaymentProvider {
  const run = async <R extends { status: string }>(
    input: { merchantId: string; idempotencyKey: string },
    kind: Kind,
    amount: number | null,
    effect: (trx: TestPspTrx) => Promise<Effect<R>>,
    signal: AbortSignal,
  ): Promise<R> => {
    await delay(latencyMs, signal);
    return abortable(
      withSystem(db, (trx) => once(trx, input, kind, amount, () => effect(trx))),
      signal,
    );
  };
  return {
    name: 'test',
    async authorize(input, signal) {
      const result = await run(
        input,
        'authorize',
        input.amount,
        (trx) => authorizeCharge(trx, input),
        signal,
      );
      // Recorded (and held) at the PSP, but the answer never comes back.
      if (input.token === 'tok_hang') return untilAborted(signal);
      return result;
    },
    capture: (input, signal) =>
      run(input, 'capture', input.amount, (trx) => captureCharge(trx, input), signal),
    void: (input, signal) => run(input, 'void', null, (trx) => voidCharge(trx, input), signal),
    refund: (input, signal) => run(input, 'refund', input.amount, (trx) => refundCharge(trx, input), signal),
  };
}
