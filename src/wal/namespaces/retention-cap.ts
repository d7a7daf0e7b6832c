import { validationFailed } from '../../platform/http/index.ts';
import type { Namespace } from './namespace.ts';

/**
 * MERCATO_WAL_MAX_RETENTION_SECONDS bounds how long any namespace keeps delivered messages and dead
 * letters: the disk is the operator's, the setting a tenant admin's. Never below 7 days (the config
 * bound), so a system namespace's minimum dead retention (SYSTEM_MIN_DEAD_RETENTION_SECONDS) fits.
 */

type Retention = {
  deliveredRetentionSeconds?: number | undefined;
  deadRetentionSeconds?: number | undefined;
};

/**
 * A retention above the cap is refused like any invalid field (400 VALIDATION_FAILED naming it);
 * on an update, the value the namespace already holds is accepted (a GET-edit-PUT of one stored
 * before the cap), as it changes nothing: retention holds it to the cap anyway.
 */
export function checkRetention(body: Retention, max: number, current?: Namespace): void {
  const message = `must be at most ${max} (this server's longest retention, MERCATO_WAL_MAX_RETENTION_SECONDS)`;
  const errors = (['deliveredRetentionSeconds', 'deadRetentionSeconds'] as const)
    .filter((field) => body[field] !== undefined && body[field] > max && body[field] !== current?.[field])
    .map((field) => ({ in: 'body' as const, pointer: `/${field}`, message }));
  if (errors.length === 0) return;
  throw validationFailed(errors);
}

/**
 * The namespace as retention applies it: each period at most the cap (a row stored before the cap,
 * or before the operator lowered it, may say more). The API still shows the stored value.
 */
export function capRetention<N extends Namespace>(ns: N, max: number): N {
  if (ns.deliveredRetentionSeconds <= max && ns.deadRetentionSeconds <= max) return ns;
  return {
    ...ns,
    deliveredRetentionSeconds: Math.min(ns.deliveredRetentionSeconds, max),
    deadRetentionSeconds: Math.min(ns.deadRetentionSeconds, max),
  };
}
