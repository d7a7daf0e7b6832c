import type { EventMeta } from '../platform/events/index.ts';
import { AppError } from '../platform/http/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import { linesHash, mergeLines, type OpResult, type ReservationOp, transferHash } from './reservation-ops.ts';
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

/**
 * What `transfer` moves: units held by reservation `from` into reservation `to` (created when
 * absent); `lines` omitted moves everything `from` holds.
 */
export type TransferInput = {
  from: string;
  to: string;
  lines?: ReservationLine[] | undefined;
  /** The expiry of a `to` the transfer creates (an existing one keeps its own). */
  ttlSeconds?: number | undefined;
  /** On a created `to`, and on the ledger entries (instead of from's key). */
  reference?: string | undefined;
  actor: string;
};

/** A transfer's input checked (VALIDATION_FAILED pointers as the routes'), as the operation to run. */
export function transferOp(input: TransferInput, defaultTtlSeconds: number): ReservationOp {
  checkKey(input.from, '/from');
  checkKey(input.to, '/to');
  if (input.to === input.from) throw invalid('/to', 'must name another reservation than from');
  const lines = input.lines === undefined ? null : checkLines(input.lines);
  const ttl = input.ttlSeconds ?? defaultTtlSeconds;
  checkTtl(ttl);
  checkReference(input.reference);
  return {
    kind: 'transfer',
    key: input.from,
    to: input.to,
    lines,
    ttlSeconds: ttl,
    reference: input.reference ?? null,
    actor: input.actor,
    hash: transferHash(input.from, lines),
  };
}

function checkKey(key: string, pointer = '/key'): void {
  if (typeof key !== 'string' || !KEY.test(key))
    throw invalid(pointer, 'must be 1 to 200 visible ASCII characters');
}

function checkTtl(ttl: number): void {
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL)
    throw invalid('/ttlSeconds', `must be 1 to ${MAX_TTL}`);
}

/** 1 to 100 lines of a UUID variant and 1 to 1,000,000 units; merged (one per variant) and sorted. */
function checkLines(lines: ReservationLine[]): ReservationLine[] {
  if (!Array.isArray(lines) || lines.length === 0 || lines.length > 100) {
    throw invalid('/lines', 'must hold 1 to 100 lines');
  }
  for (const [i, line] of lines.entries()) {
    if (typeof line?.variantId !== 'string' || !isUuid(line.variantId)) {
      throw invalid(`/lines/${i}/variantId`, 'must be a UUID');
    }
    if (!Number.isInteger(line.quantity) || line.quantity < 1 || line.quantity > 1_000_000) {
      throw invalid(`/lines/${i}/quantity`, 'must be an integer from 1 to 1000000');
    }
  }
  return mergeLines(lines.map((l) => ({ variantId: l.variantId.toLowerCase(), quantity: l.quantity })));
}

function checkReference(reference: string | undefined): void {
  if (
    reference !== undefined &&
    (typeof reference !== 'string' ||
      reference.length < 1 ||
      reference.length > 200 ||
      reference.includes('\u0000'))
  ) {
    throw invalid('/reference', 'must be 1 to 200 characters, without U+0000');
  }
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
      const lines = checkLines(input.lines);
      const ttl = input.ttlSeconds ?? defaultTtlSeconds;
      checkTtl(ttl);
      checkReference(input.reference);
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
    /**
     * Moves units held by `from` (active) into `to`; the items' counters stay as they are. Lines
     * omitted: everything, and `from` ends released. Idempotent as reservation-transfer.ts rules.
     */
    async transfer(tenantId: string, input: TransferInput, meta?: EventMeta): Promise<OpResult> {
      return batcher.submit(tenantId, transferOp(input, defaultTtlSeconds), meta);
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
