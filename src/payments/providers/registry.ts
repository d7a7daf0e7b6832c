import { AppError } from '../../platform/http/index.ts';
import type { PaymentProvider } from './provider.ts';

/** The providers Mercato can take payments with. */
export const PROVIDERS = ['test'] as const;

export type ProviderRegistry = {
  /**
   * The provider named, or 400 VALIDATION_FAILED for one Mercato does not have; 422
   * CHECKOUT_INVALID for the `test` provider while MERCATO_TEST_PAYMENTS is off.
   */
  get(name: string): PaymentProvider;
};

export function providerRegistry(testPsp: PaymentProvider, testPayments: boolean): ProviderRegistry {
  return {
    get(name) {
      if (name !== 'test') {
        throw new AppError('VALIDATION_FAILED', `unknown payment provider ${JSON.stringify(name)}`, {
          errors: [{ in: 'body', pointer: '/provider', message: `must be one of ${PROVIDERS.join(', ')}` }],
        });
      }
      if (!testPayments) {
        throw new AppError(
          'CHECKOUT_INVALID',
          'the test payment provider is turned off (MERCATO_TEST_PAYMENTS=false)',
          { provider: name },
        );
      }
      return testPsp;
    },
  };
}
