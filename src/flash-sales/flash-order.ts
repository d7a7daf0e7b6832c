import type { Address } from '../identity/index.ts';
import type { NewOrder } from '../orders/index.ts';
import type { Candidate } from './admission-committer.ts';
import type { Campaign } from './campaign-store.ts';

/**
 * The order of an admitted attempt: the campaign's variant at the sale price, shipped to the
 * customer's address. The sale price is what the buyer pays, shipping included and tax inside it
 * (recorded as tax-inclusive at 0: a sale's tax split is left to the finance export).
 */
export function flashOrder(campaign: Campaign, c: Candidate, address: Address): NewOrder {
  const total = campaign.salePrice * c.quantity;
  const shipping = {
    recipient: address.recipient,
    line1: address.line1,
    line2: address.line2,
    city: address.city,
    region: address.region,
    postalCode: address.postalCode,
    country: address.country,
    phone: address.phone,
    addressId: address.id,
  };
  return {
    id: c.orderId,
    customerId: c.customerId,
    email: null,
    currency: campaign.currency,
    lines: [
      {
        variantId: campaign.variantId,
        productId: campaign.productId,
        sku: campaign.sku,
        title: campaign.title,
        variantTitle: campaign.variantTitle,
        quantity: c.quantity,
        unitPrice: campaign.salePrice,
        tax: 0,
        lineTotal: total,
      },
    ],
    shippingAddress: shipping,
    billingAddress: shipping,
    shippingOption: null,
    totals: {
      subtotal: total,
      discount: 0,
      shipping: 0,
      tax: 0,
      total,
      taxRateBps: 0,
      pricesIncludeTax: true,
    },
    cartId: null,
    idempotencyScope: `flash-sale:${campaign.id}:user:${c.customerId}`,
    idempotencyKey: c.key,
    requestHash: c.request.hash,
    correlationId: c.meta.correlationId ?? null,
    guestTokenHash: null,
    actor: `flash-sale:${campaign.id}`,
  };
}
