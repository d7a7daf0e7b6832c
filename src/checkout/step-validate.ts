import type { SagaStepDefinition } from './step-definition.ts';
import { failed } from './step-outcome.ts';

export const validateStep: SagaStepDefinition = {
  name: 'validate',
  async invoke({ deps, saga, order }) {
    if (!order.shippingAddress) return failed('validation', 'the order needs a shipping address');
    if (!saga.payment) return failed('validation', 'the order needs a payment token');
    const variants = await deps.catalog.findVariants(saga.tenantId, {
      ids: order.lines.map((l) => l.variantId),
    });
    const byId = new Map(variants.map((v) => [v.variantId, v]));
    for (const line of order.lines) {
      const variant = byId.get(line.variantId);
      if (variant?.productStatus !== 'active') {
        return failed('validation', `${line.sku} is no longer for sale`);
      }
      const price = variant.prices[order.currency];
      if (price !== line.unitPrice) {
        return failed(
          'validation',
          price === undefined
            ? `${line.sku} has no price in ${order.currency} any more`
            : `the price of ${line.sku} changed from ${line.unitPrice} to ${price}`,
        );
      }
    }
    return { ok: true };
  },
  async compensate() {
    return null;
  },
};
