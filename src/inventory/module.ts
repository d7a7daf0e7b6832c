import type { Transaction } from 'kysely';
import { withTenant } from '../platform/db/index.ts';
import type { EventBus, EventMeta } from '../platform/events/index.ts';
import type { AppError, TenantResolver } from '../platform/http/index.ts';
import type { AppContext, MercatoModule } from '../platform/index.ts';
import { isUuid } from '../platform/uuidv7.ts';
import type { InventoryDeps } from './deps.ts';
import { createExpirySweeper, type SweeperOptions } from './expiry-sweeper.ts';
import { createInventoryMetrics } from './inventory-metrics.ts';
import { itemRoutes } from './item-routes.ts';
import { availabilityOf } from './item-store.ts';
import { verifyStock } from './ledger-store.ts';
import { locationRoutes } from './location-routes.ts';
import { runBatchIn } from './reservation-batch.ts';
import { type BatcherStats, createReservationBatcher } from './reservation-batcher.ts';
import type { OpResult, ReservationOp } from './reservation-ops.ts';
import { reservationRoutes } from './reservation-routes.ts';
import { reservationService, type SubmitOp, type TransferInput, transferOp } from './reservation-service.ts';
import { flushWrites } from './reservation-write.ts';
import type { InventoryDb, InventoryTrx } from './tables.ts';
import { variantSubscriber } from './variant-subscriber.ts';
import type { Availability, Reservation, ReservationLine } from './views.ts';

export type InventoryApi = ReservationOperations & {
  /**
   * Summed over locations; a variant with no stock row is absent from the map (available 0). In
   * `trx` (the caller's transaction of the tenant) when given.
   */
  availability(
    tenantId: string,
    variantIds: string[],
    // biome-ignore lint/suspicious/noExplicitAny: any module's transaction of the tenant
    trx?: Transaction<any>,
  ): Promise<Map<string, Availability>>;
  /**
   * The reservation operations in `trx`, the caller's transaction of the tenant (withTenant): each
   * commits with the caller's change, or not at all (a saga step's effect and its log), instead
   * of in a batch of its own. Errors as the batched ones. Each operation's write goes out with
   * the commit (the inventory's own later reads in trx make it first).
   */
  // biome-ignore lint/suspicious/noExplicitAny: any module's transaction
  within(trx: Transaction<any>): ReservationOperations & {
    /**
     * Many transfers in ONE batch of the caller's transaction (their reservations and items locked
     * once, written in one statement): each answered on its own, a refusal (its AppError) leaving
     * the others to go through.
     */
    transferMany(
      tenantId: string,
      inputs: { input: TransferInput; meta?: EventMeta | undefined }[],
    ): Promise<(Reservation | AppError)[]>;
  };
};

/** Reserve, extend, release, commit, return and transfer, each idempotent by the reservation key. */
export type ReservationOperations = {
  /**
   * All or nothing; idempotent by key (same key + same lines → the same reservation; other lines
   * → 409 IDEMPOTENCY_KEY_REUSED). Not enough → AppError INSUFFICIENT_STOCK with extras
   * { lines: [{ variantId, requested, available }] }.
   */
  reserve(
    tenantId: string,
    input: { key: string; lines: ReservationLine[]; ttlSeconds?: number; reference?: string; actor: string },
    meta?: EventMeta,
  ): Promise<Reservation>;
  extend(
    tenantId: string,
    key: string,
    ttlSeconds: number,
    actor: string,
    meta?: EventMeta,
  ): Promise<Reservation>;
  release(tenantId: string, key: string, actor: string, meta?: EventMeta): Promise<Reservation>;
  commit(tenantId: string, key: string, actor: string, meta?: EventMeta): Promise<Reservation>;
  /** Puts a committed reservation's units back on hand (status returned); idempotent; 409 unless committed or returned. */
  returnStock(tenantId: string, key: string, actor: string, meta?: EventMeta): Promise<Reservation>;
  /**
   * Moves units held by active reservation `from` into `to` (a flash sale's pool into an order's
   * reservation, or a failed order's units back into the pool); on hand and reserved do not
   * change. `lines` omitted moves everything and ends `from` released; named lines leave it
   * active. `to` absent is created (expiry now + ttlSeconds, `reference`); `to` active gains the
   * units (its expiry unchanged). Answers `to` after the move. A replay of the transfer that
   * created `to` (same from and lines), or a move of everything from a `from` that no longer
   * holds (released, expired, committed, returned), answers `to` as it is and moves nothing.
   * Errors: from or to missing → NOT_FOUND; from (with lines) or to not active → 409
   * RESERVATION_NOT_ACTIVE; from holding too few → 409 INSUFFICIENT_STOCK with extras
   * { lines: [{ variantId, requested, available }] } (available: what from holds).
   */
  transfer(tenantId: string, input: TransferInput, meta?: EventMeta): Promise<Reservation>;
};

export type InventoryModule = MercatoModule &
  InventoryApi & {
    /** Expires every reservation past its expiry now (the sweeper does it by itself); returns how many. */
    sweepExpired(): Promise<number>;
    /** Rebuilds a tenant's stock from its ledger and reports every item that drifted. */
    verify(tenantId: string): ReturnType<typeof verifyStock>;
    /** Batches and operations the reservation batcher ran (operations per batch = the batching). */
    batcherStats(): BatcherStats;
  };

export type InventoryOptions = { sweeper?: SweeperOptions };

/** Stock per variant per location, TTL reservations batched per hot SKU, the ledger, and their routes and events. */
export async function createInventory(
  ctx: AppContext,
  deps: {
    events: EventBus;
    resolveTenant: TenantResolver;
    /** The catalog's status of a product: a shopper sees the stock of active products only. */
    productStatus?: (tenantId: string, productId: string) => Promise<string | undefined>;
  },
  options: InventoryOptions = {},
): Promise<InventoryModule> {
  const db = ctx.db.kysely as InventoryDb;
  const logger = ctx.logger.child({ module: 'inventory' });
  const metrics = createInventoryMetrics(ctx.metrics.registry);
  const sweeper = createExpirySweeper(db, deps.events, logger, {
    ...options.sweeper,
    onExpired: (count) => metrics.ops.inc({ kind: 'expire', outcome: 'ok' }, count),
  });
  const batcher = createReservationBatcher(db, deps.events, {
    // PGlite is one connection: a second transaction in flight would only wait for the first.
    maxInFlight: ctx.db.kind === 'pglite' ? 1 : 2,
    onExpiry: (at) => sweeper.notice(at),
    onBatch: (result, ops) => {
      metrics.batchSize.observe(ops.length);
      for (const [i, op] of ops.entries()) countOp(op, result.answers[i]!);
    },
  });
  const reservations = reservationService(batcher.submit, ctx.config.reservationTtlSeconds);
  const countOp = (op: ReservationOp, answer: OpResult | { error: AppError }) =>
    metrics.ops.inc({ kind: op.kind, outcome: 'error' in answer ? answer.error.code : 'ok' });
  /** One operation in the caller's transaction (no batch: it commits with the caller's change). */
  const inTransaction =
    (trx: InventoryTrx): SubmitOp =>
    async (tenantId, op, meta) => {
      const result = await runBatchIn(trx, deps.events, tenantId, [{ op, meta }]);
      const answer = result.answers[0]!;
      countOp(op, answer);
      if (result.earliestExpiry) sweeper.notice(result.earliestExpiry);
      if ('error' in answer) throw answer.error;
      return answer;
    };
  const operations = (service: ReturnType<typeof reservationService>): ReservationOperations => ({
    async reserve(tenantId, input, meta) {
      return (await service.reserve(tenantId, input, meta)).reservation;
    },
    extend: (tenantId, key, ttlSeconds, actor, meta) =>
      service.extend(tenantId, key, ttlSeconds, actor, meta),
    release: (tenantId, key, actor, meta) => service.release(tenantId, key, actor, meta),
    commit: (tenantId, key, actor, meta) => service.commit(tenantId, key, actor, meta),
    returnStock: (tenantId, key, actor, meta) => service.returnStock(tenantId, key, actor, meta),
    async transfer(tenantId, input, meta) {
      return (await service.transfer(tenantId, input, meta)).reservation;
    },
  });
  const routeDeps: InventoryDeps = {
    db,
    events: deps.events,
    resolveTenant: deps.resolveTenant,
    reservations,
    productStatus: deps.productStatus,
  };
  deps.events.subscribe(variantSubscriber(deps.events));

  return {
    name: 'inventory',
    async routes(app) {
      await app.register(locationRoutes(routeDeps));
      await app.register(reservationRoutes(routeDeps));
      await app.register(itemRoutes(routeDeps));
    },
    async start() {
      sweeper.start();
    },
    async stop() {
      await sweeper.stop();
      await batcher.close();
    },
    async availability(tenantId, variantIds, trx) {
      // Ids that are no UUID name no stock row (absent), rather than failing the query.
      const ids = [...new Set(variantIds.map((id) => String(id).toLowerCase()))].filter((id) => isUuid(id));
      const read = (t: InventoryTrx) => availabilityOf(t, { variantIds: ids });
      // In the caller's transaction: after an operation's write deferred there, if any.
      const flushed = trx && flushWrites(trx as InventoryTrx);
      if (flushed) await flushed;
      const map = await (trx ? read(trx as InventoryTrx) : withTenant(db, tenantId, read));
      const result = new Map<string, Availability>();
      for (const [id, { productId: _productId, ...availability }] of map) result.set(id, availability);
      return result;
    },
    ...operations(reservations),
    within: (trx) => ({
      ...operations(reservationService(inTransaction(trx as InventoryTrx), ctx.config.reservationTtlSeconds)),
      async transferMany(tenantId, inputs) {
        if (inputs.length === 0) return [];
        const entries = inputs.map(({ input, meta }) => ({
          op: transferOp(input, ctx.config.reservationTtlSeconds),
          meta,
        }));
        const result = await runBatchIn(trx as InventoryTrx, deps.events, tenantId, entries);
        if (result.earliestExpiry) sweeper.notice(result.earliestExpiry);
        return result.answers.map((answer, i) => {
          countOp(entries[i]!.op, answer);
          return 'error' in answer ? answer.error : answer.reservation;
        });
      },
    }),
    sweepExpired: () => sweeper.sweep(),
    verify: (tenantId) => withTenant(db, tenantId, (trx) => verifyStock(trx)),
    batcherStats: () => batcher.stats(),
  };
}
