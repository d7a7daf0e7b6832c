import type { DomainEvent, EventBus, EventMeta } from '../platform/events/index.ts';
import { type Campaign, campaignView } from './campaign-store.ts';
import type { FlashSalesTrx } from './tables.ts';

/** The lifecycle events of a campaign, in `order-events` with the sale's orders. */
export const CAMPAIGN_EVENT_TYPES = {
  started: 'mercato.flash-sale.started',
  soldOut: 'mercato.flash-sale.sold-out',
  ended: 'mercato.flash-sale.ended',
} as const;

export type CampaignEventKind = keyof typeof CAMPAIGN_EVENT_TYPES;

export function campaignEvent(kind: CampaignEventKind, campaign: Campaign, now = new Date()): DomainEvent {
  return { type: CAMPAIGN_EVENT_TYPES[kind], subject: campaign.id, data: campaignView(campaign, now) };
}

/** Publishes in trx (the outbox: with the change that made it). */
export function publishCampaignEvents(
  events: EventBus,
  trx: FlashSalesTrx,
  tenantId: string,
  made: DomainEvent[],
  meta?: EventMeta,
): Promise<void> {
  return made.length === 0 ? Promise.resolve() : events.publish(trx, tenantId, 'order-events', made, meta);
}
