import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import { linesHash, mergeLines, type OpResult, type ReservationOp } from './reservation-ops.ts';
import type { ReservationLine } from './views.ts';

const KEY = /^[\x21-\x7e]{1,200}$/;
const MAX_TTL = 30 * 86_400;

export type ReserveInput = {
  key: string;
  lines: ReservationLine[];
  ttlSeconds?: number | undefined;
  reference?: string | undefined;
  actor: string;
};

function invalid(pointer: string, message: string): AppError {
  return new AppError('VALIDATION_FAILED', `${pointer.slice(1)} ${message}`, {
    errors: [{ in: 'body', pointer, message }],
  });
}

function checkKey(key: string): void {
  if (typeof key !== 'string' || !KEY.test(key))
    throw invalid('/key', 'must be 1 to 200 visible ASCII characters');
}

function checkTtl(ttl: number): void {
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL)
    throw invalid('/ttlSeconds', `must be 1 to ${MAX_TTL}`);
}

/** Runs one checked operation: through the batcher, or in a caller's transaction. */
export type SubmitOp = (tenantId: string, op: ReservationOp, meta?: EventMeta) => Promise<OpResult>;

/**
 * The reservation operations over `submit` (the batcher's, or a caller's transaction's), checked
 * as the routes' schemas check them (the in-process API is called by other modules without a
 * schema in between).
 */
export function reservationService(submit: SubmitOp, defaultTtlSeconds: number) {
  const batcher = { submit };
  return {
    async reserve(tenantId: string, input: ReserveInput, meta?: EventMeta): Promise<OpResult> {
      checkKey(input.key);
      if (!Array.isArray(input.lines) || input.lines.length === 0 || input.lines.length > 100) {
        throw invalid('/lines', 'must hold 1 to 100 lines');
      }
      for (const [i, line] of input.lines.entries()) {
        if (typeof line.variantId !== 'string' || !isUuid(line.variantId)) {
          throw invalid(`/lines/${i}/variantId`, 'must be a UUID');
        }
        if (!Number.isInteger(line.quantity) || line.quantity < 1 || line.quantity > 1_000_000) {
          throw invalid(`/lines/${i}/quantity`, 'must be an integer from 1 to 1000000');
        }
      }
      const ttl = input.ttlSeconds ?? defaultTtlSeconds;
      checkTtl(ttl);
      if (
        input.reference !== undefined &&
        (typeof input.reference !== 'string' ||
          input.reference.length < 1 ||
          input.reference.length > 200 ||
          input.reference.includes('\u0000'))
      ) {
        throw invalid('/reference', 'must be 1 to 200 characters, without U+0000');
      }
      const lines = mergeLines(
        input.lines.map((l) => ({ variantId: l.variantId.toLowerCase(), quantity: l.quantity })),
      );
      return batcher.submit(
        tenantId,
        {
          kind: 'reserve',
          key: input.key,
          lines,
          ttlSeconds: ttl,
          reference: input.reference ?? null,
          actor: input.actor,
          hash: linesHash(lines),
        },
        meta,
      );
    },
    async extend(
      tenantId: string,
      key: string,
      ttlSeconds: number | undefined,
      actor: string,
      meta?: EventMeta,
    ) {
      checkKey(key);
      const ttl = ttlSeconds ?? defaultTtlSeconds;
      checkTtl(ttl);
      return (await batcher.submit(tenantId, { kind: 'extend', key, ttlSeconds: ttl, actor }, meta))
        .reservation;
    },
    async release(tenantId: string, key: string, actor: string, meta?: EventMeta) {
      checkKey(key);
      return (await batcher.submit(tenantId, { kind: 'release', key, actor }, meta)).reservation;
    },
    async commit(tenantId: string, key: string, actor: string, meta?: EventMeta) {
      checkKey(key);
      return (await batcher.submit(tenantId, { kind: 'commit', key, actor }, meta)).reservation;
    },
    /** Puts a committed reservation's units back on hand (a cancelled or returned order); idempotent. */
    async returnStock(tenantId: string, key: string, actor: string, meta?: EventMeta) {
      checkKey(key);
      return (await batcher.submit(tenantId, { kind: 'return', key, actor }, meta)).reservation;
    },
  };
}

export type ReservationService = ReturnType<typeof reservationService>;
