/**
 * The low-stock alarm of one item: `mercato.inventory.low-stock` is published once when
 * available falls to or below the threshold (a downward crossing) and the item's flag is set;
 * the flag is cleared (re-armed) when available rises above the threshold again.
 */
export function lowStockTransition(
  available: number,
  threshold: number,
  alerted: boolean,
): { alerted: boolean; publish: boolean } {
  const low = available <= threshold;
  if (low && !alerted) return { alerted: true, publish: true };
  if (!low && alerted) return { alerted: false, publish: false };
  return { alerted, publish: false };
}
