import type { InternalTarget, Namespace, Target } from './namespace.ts';

/**
 * The internal targets Mercato's modules declare on system namespaces (EventBus subscribers):
 * not stored rows but merged into every tenant's system namespace of their topic when it is
 * read (the cache, GET), marked `system: true`, ahead of the tenant's own targets. The tenant
 * cannot remove, replace or rename them: a stored target of the same name is left out.
 */
export type SystemTargets = {
  declare(topic: string, target: InternalTarget): void;
  /** The declared targets of a topic. */
  of(topic: string): InternalTarget[];
  /** The namespace with its declared targets merged in (itself when it has none). */
  apply<N extends Merged>(namespace: N): N;
  apply<N extends Merged>(namespace: N | undefined): N | undefined;
};

/** A namespace as stored, or opened (its HTTP targets' secrets in clear): either takes the declared targets. */
type Merged = Pick<Namespace, 'name' | 'system' | 'targets'>;

export function createSystemTargets(): SystemTargets {
  const byTopic = new Map<string, InternalTarget[]>();
  function apply<N extends Merged>(namespace: N): N;
  function apply<N extends Merged>(namespace: N | undefined): N | undefined;
  function apply<N extends Merged>(namespace: N | undefined): N | undefined {
    if (!namespace?.system) return namespace;
    const declared = byTopic.get(namespace.name);
    if (!declared || declared.length === 0) return namespace;
    const names = new Set(declared.map((t) => t.name));
    const own: Target[] = namespace.targets.filter((t) => !names.has(t.name));
    return { ...namespace, targets: [...declared, ...own] };
  }
  return {
    declare(topic, target) {
      const list = byTopic.get(topic) ?? [];
      if (list.some((t) => t.name === target.name)) {
        throw new Error(`a subscriber named "${target.name}" is already declared on ${topic}`);
      }
      byTopic.set(topic, [...list, { ...target, system: true }]);
    },
    of: (topic) => byTopic.get(topic) ?? [],
    apply,
  };
}
