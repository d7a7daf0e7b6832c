/** Deliveries of one namespace running at once, and those waiting for a free slot. */
type Slots = { active: number; waiting: (() => void)[] };

/** The key of a message's namespace in the engine's maps (slots, lease windows). */
export const namespaceKey = (m: { tenantId: string; namespace: string }) => `${m.tenantId}/${m.namespace}`;

export type NamespaceSlots = {
  /**
   * Runs `deliver` once fewer than `limit` deliveries of the namespace `key` run, holding a slot
   * until it settles; the next one waiting then takes it.
   */
  run<T>(key: string, limit: number, deliver: () => Promise<T>): Promise<T>;
};

/** The delivery slots of every namespace, kept only while one is taken or awaited. */
export function createNamespaceSlots(): NamespaceSlots {
  const slots = new Map<string, Slots>();
  return {
    async run(key, limit, deliver) {
      let slot = slots.get(key);
      if (!slot) {
        slot = { active: 0, waiting: [] };
        slots.set(key, slot);
      }
      if (slot.active >= limit) await new Promise<void>((resolve) => slot.waiting.push(resolve));
      slot.active++;
      try {
        return await deliver();
      } finally {
        slot.active--;
        const next = slot.waiting.shift();
        if (next) next();
        else if (slot.active === 0) slots.delete(key);
      }
    },
  };
}
