import { AppError, type Principal } from '../../platform/http/index.ts';
import type { WalDeps } from '../deps.ts';
import { canWriteNamespace, type Namespace } from '../namespaces/index.ts';
import { type MessageInput, requireEnabled } from './prepare.ts';

// The namespace a write goes to (write-routes.ts): who may write it, and what it takes.

/** Whether the principal may write (and so read) at least one namespace, whichever it is. */
export const maySomeNamespace = (p: Principal) =>
  p.kind === 'user' ? canWriteNamespace(p, '*') : (p.namespaces ?? []).some((n) => canWriteNamespace(p, n));

/**
 * Authorization and the namespace: 403 when the principal may not write it (checked on the name,
 * so a key scoped elsewhere learns nothing about the tenant's namespaces), 404 when it does not
 * exist, 403 for a system namespace (domain events) other than an inbound one, 409 NAMESPACE_DISABLED.
 */
export async function writableNamespace(
  deps: WalDeps,
  principal: Principal,
  name: string,
): Promise<Namespace> {
  if (!canWriteNamespace(principal, name)) {
    throw new AppError('FORBIDDEN', `this credential may not write to namespace ${name}`);
  }
  const namespace = await deps.namespaces.get(principal.tenantId, name);
  if (!namespace) throw new AppError('NOT_FOUND', `namespace ${name} not found`);
  // Domain events come from Mercato's modules only: a forged one would reach their subscribers.
  // An inbound system namespace (interface-exceptions) is written by the tenant's systems.
  if (namespace.system && !deps.inbound?.has(name)) {
    throw new AppError('FORBIDDEN', `${name} is a system namespace: only Mercato's modules publish to it`);
  }
  requireEnabled(namespace);
  return namespace;
}

/**
 * 422 PAYLOAD_SCHEMA_MISMATCH when a message to an inbound system namespace is not one of the
 * events its module takes (every failing field of every message listed).
 */
export function checkInbound(
  deps: WalDeps,
  namespace: Namespace,
  messages: MessageInput[],
  pointerOf: (i: number) => string,
): void {
  const check = namespace.system ? deps.inbound?.get(namespace.name) : undefined;
  if (!check) return;
  const errors = messages.flatMap((m, i) =>
    check(m).map((e) => ({ ...e, pointer: `${pointerOf(i)}${e.pointer}` })),
  );
  if (errors.length === 0) return;
  throw new AppError(
    'PAYLOAD_SCHEMA_MISMATCH',
    `${namespace.name} takes only the events its collector knows: ${errors[0]!.pointer} ${errors[0]!.message}`,
    { errors: errors.slice(0, 100) },
  );
}
