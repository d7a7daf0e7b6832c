import { withTenant } from '../platform/db/index.ts';
import type { ExceptionsDeps, PayloadAnswer } from './deps.ts';
import type { ExceptionRow } from './exception-view.ts';
import type { PayloadCache } from './payload-cache.ts';
import { type SecretBox, SecretUnreadableError } from './secrets.ts';
import { type SourceBreakers, type SourcePermit, SourceUnavailableError } from './source-breakers.ts';
import { type SourceClient, SourceError, sourceUrl } from './source-client.ts';
import { getSource, targetOf } from './source-store.ts';
import type { ExceptionsTrx, InterfaceType, SourceRef } from './tables.ts';

/** What loading a payload uses: the sources' client, their breakers, the cache and the secrets. */
export type PayloadParts = {
  deps: ExceptionsDeps;
  box: SecretBox;
  client: SourceClient;
  breakers: SourceBreakers;
  cache: PayloadCache;
};

/** Why a source call gave nothing, in words a tenant may read. */
export function describeFailure(error: unknown): string {
  if (error instanceof SourceUnavailableError) return error.message;
  if (error instanceof SourceError) return error.message;
  if (error instanceof SecretUnreadableError) return error.message;
  return 'the source could not be reached';
}

/** The id a source knows the exception's payload by. */
export const payloadIdOf = (row: ExceptionRow, ref: Extract<SourceRef, { kind: 'source' }>) =>
  ref.externalId ?? row.external_id ?? row.transaction_id;

/**
 * The exception's payload for its detail, from where it lives: a dead letter's message (the WAL,
 * whatever its state now), the order it concerns, or the interface's source (`GET
 * {baseUrl}/payloads/{id}` through its breaker, cached); else the payload the event carried.
 * Never throws: a source that fails answers the event's payload with the reason in `error`.
 */
export function createPayloadLoader(parts: PayloadParts) {
  const { deps, box, client, breakers, cache } = parts;
  const fromEvent = (row: ExceptionRow, error?: string): PayloadAnswer => ({
    payload: row.payload,
    from: 'event',
    ...(error === undefined ? {} : { error }),
  });

  async function fromSource(
    tenantId: string,
    row: ExceptionRow,
    ref: Extract<SourceRef, { kind: 'source' }>,
    permit: SourcePermit | undefined,
  ): Promise<PayloadAnswer> {
    const interfaceType: InterfaceType = ref.interfaceType ?? row.interface_type;
    const source = await withTenant(deps.db, tenantId, (trx) => getSource(trx, tenantId, interfaceType));
    if (!source) return fromEvent(row, `no source is configured for ${interfaceType}`);
    const id = payloadIdOf(row, ref);
    const url = sourceUrl(source.base_url, `payloads/${encodeURIComponent(id)}`).href;
    const cached = await cache.get(tenantId, row.transaction_id);
    if (cached?.url === url) return { payload: cached.payload, from: 'cache' };
    try {
      const target = await targetOf(box, source);
      const payload = await breakers.run(
        tenantId,
        interfaceType,
        () => client.getPayload(target, id),
        permit,
      );
      await cache.set(tenantId, row.transaction_id, { url, payload });
      return { payload, from: 'source' };
    } catch (error) {
      if (!(error instanceof SourceError || error instanceof SourceUnavailableError)) {
        deps.ctx.logger.warn(
          { err: error, tenantId, interfaceType },
          'loading a payload from its source failed',
        );
      }
      return fromEvent(row, describeFailure(error));
    }
  }

  async function load(tenantId: string, row: ExceptionRow, permit?: SourcePermit): Promise<PayloadAnswer> {
    const ref = row.source_ref;
    switch (ref?.kind) {
      case 'wal-dead-letter': {
        try {
          const message = await deps.wal.deadLetters.state(tenantId, ref.namespace, ref.messageId);
          if (message) return { payload: message.payload, from: 'dead-letter' };
          return fromEvent(row, 'the message is no longer in the WAL (purged or discarded)');
        } catch {
          return fromEvent(row, "the WAL backend holding the message can't be reached now");
        }
      }
      case 'order': {
        const order = await withTenant(deps.db, tenantId, (trx) =>
          deps.orders.get(trx as ExceptionsTrx, tenantId, ref.orderId),
        );
        return order ? { payload: order, from: 'source' } : fromEvent(row, `order ${ref.orderId} not found`);
      }
      case 'source':
        return fromSource(tenantId, row, ref, permit);
      default:
        return fromEvent(row);
    }
  }

  /** `permit`: a retry's leave to call the source, which its payload's call uses (else one of its own). */
  return async function loadPayload(
    tenantId: string,
    row: ExceptionRow,
    permit?: SourcePermit,
  ): Promise<PayloadAnswer> {
    try {
      return await load(tenantId, row, permit);
    } catch (error) {
      deps.ctx.logger.error({ err: error, tenantId }, 'loading an exception payload failed');
      return fromEvent(row, 'the payload could not be loaded now');
    }
  };
}
