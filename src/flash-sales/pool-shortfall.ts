import { Counter, type Registry } from 'prom-client';
import { AppError } from '../platform/http/index.ts';

/**
 * An admission batch's transfers found the sale's pool holding fewer units than the record counts
 * as left (units − admitted): a bug, a change to the pool behind the sale's back, a crash between
 * two steps. The batch's transaction is undone and run again with the record's units lowered by
 * `units`, so that it admits what the pool holds and answers the rest sold out.
 */
export class PoolShort extends Error {
  override name = 'PoolShort';
  /** Units the record counts as left that the pool does not hold. */
  readonly units: number;

  /** `refusal`: the transfer's own (the cause). */
  constructor(units: number, refusal: AppError) {
    super(`the sale's pool holds ${units} units fewer than its record counts as left`, { cause: refusal });
    this.units = units;
  }
}

/** Codes of a transfer refused because its pool holds too few units, or none (released, gone). */
const SHORT = new Set(['INSUFFICIENT_STOCK', 'RESERVATION_NOT_ACTIVE', 'NOT_FOUND']);

/**
 * What the pool held when the batch's transfers began, read from their answers (each applied in
 * order against the pool, a refusal moving nothing): the units moved before the first refusal
 * for want of units, plus what that refusal reports the pool still held (INSUFFICIENT_STOCK's
 * `available`; a pool no longer active holds none). Undefined when no transfer was refused so.
 */
export function poolHeldBefore(moved: readonly unknown[], quantities: readonly number[]): number | undefined {
  let before = 0;
  for (const [i, answer] of moved.entries()) {
    if (!(answer instanceof AppError)) {
      before += quantities[i]!;
      continue;
    }
    if (!SHORT.has(answer.code)) return undefined;
    if (answer.code !== 'INSUFFICIENT_STOCK') return before;
    const lines = answer.extras['lines'] as { available?: unknown }[] | undefined;
    const available = lines?.[0]?.available;
    return typeof available === 'number' ? before + available : undefined;
  }
  return undefined;
}

const SHORTFALL = 'mercato_flash_sale_pool_shortfall_units_total';

/**
 * Units the record counted that a sale's pool did not hold, so the record was lowered (operators:
 * drift). One per registry, however many committers share it.
 */
export function createShortfallMetric(registry: Registry): Counter {
  const made = registry.getSingleMetric(SHORTFALL);
  if (made) return made as Counter;
  return new Counter({
    name: SHORTFALL,
    help: "Units a flash sale's record counted as left that its pool no longer held (the record lowered, those attempts answered sold out)",
    registers: [registry],
  });
}
