import type { Delivery } from './target-result.ts';

/** A structured-mode CloudEvents 1.0 JSON event, with Mercato's WAL extensions. */
export type WalCloudEvent = {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  datacontenttype: 'application/json';
  data: unknown;
  tenantid: string;
  deliveryid: string;
  attempt: number;
};

/** The CloudEvent an HTTP target POSTs for one delivery; `ce-type` or `type` headers override the type. */
export function toCloudEvent(delivery: Delivery): WalCloudEvent {
  const type = delivery.headers['ce-type'] ?? delivery.headers['type'] ?? `mercato.wal.${delivery.namespace}`;
  return {
    specversion: '1.0',
    id: delivery.messageId,
    source: `/mercato/wal/${delivery.namespace}`,
    type,
    time: delivery.createdAt.toISOString(),
    datacontenttype: 'application/json',
    data: delivery.payload,
    tenantid: delivery.tenantId,
    deliveryid: delivery.deliveryId,
    attempt: delivery.attempt,
  };
}
