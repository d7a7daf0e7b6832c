import type { FastifyInstance } from 'fastify';
import { AppError, eventMetaOf, jsonProblem } from '../platform/http/index.ts';
import { verifyWebhook } from '../platform/webhook-signature.ts';
import type { PaymentsDeps } from './deps.ts';
import { WebhookAnswer, WebhookBody } from './payment-schemas.ts';
import { webhookSecret } from './providers/test-psp-webhooks.ts';
import { applySettlement, readSettlement } from './webhook-apply.ts';

const header = (value: string | string[] | undefined) => (typeof value === 'string' ? value : undefined);

/**
 * POST /payments/webhooks/test: the test PSP settles a pending authorization. No credential (the
 * PSP calls it): the Standard Webhooks signature over the raw body, at most 5 minutes old, is the
 * credential; else 401 INVALID_WEBHOOK_SIGNATURE. The tenant is the merchant the body names.
 */
export function webhookRoutes(deps: PaymentsDeps) {
  return async (app: FastifyInstance) => {
    // In this plugin only: a JSON body stays the text it arrived as, since the signature covers
    // those exact characters (a parse and re-serialisation could differ from what was signed).
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
      done(null, body);
    });

    app.post(
      '/payments/webhooks/test',
      {
        schema: {
          tags: ['payments'],
          summary:
            'Webhook of the test payment provider: a pending authorization was settled (Standard Webhooks)',
          body: WebhookBody,
          response: { 200: WebhookAnswer },
        },
      },
      async (request) => {
        deps.providers.get('test');
        const raw = request.body as string;
        const id = header(request.headers['webhook-id']);
        const signed = verifyWebhook(
          await webhookSecret(deps.pspDb),
          {
            id,
            timestamp: header(request.headers['webhook-timestamp']),
            signature: header(request.headers['webhook-signature']),
          },
          raw,
        );
        if (!signed || id === undefined) {
          throw new AppError(
            'INVALID_WEBHOOK_SIGNATURE',
            'webhook-id, webhook-timestamp and webhook-signature must sign this body within 5 minutes',
          );
        }
        let body: unknown;
        try {
          body = JSON.parse(raw);
        } catch {
          throw new AppError('MALFORMED_BODY', 'the webhook body is not valid JSON');
        }
        // The body was kept as text (the signature covers it), so the platform's guard checks it
        // here: U+0000, lone surrogates, depth and ±Infinity are refused as in any other body.
        const flaw = jsonProblem(body);
        if (flaw) throw flaw;
        if (id.length > 200)
          throw new AppError('VALIDATION_FAILED', 'webhook-id is longer than 200 characters', {
            errors: [{ in: 'headers', pointer: '/webhook-id', message: 'must be at most 200 characters' }],
          });
        const { effect, payment } = await applySettlement(
          deps,
          readSettlement(id, body),
          eventMetaOf(request),
        );
        return { received: true, effect, paymentId: payment.id };
      },
    );
  };
}
