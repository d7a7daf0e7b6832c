/**
 * The bare Fastify peer of `npm run bench:flash`, a child process of its own (as Mercato's server
 * is): the same route, `POST /api/v1/flash-sales/:id/orders`, answered 202 at once with an
 * admission-shaped JSON body made once. No authentication, no gate, no record: the ceiling of
 * Fastify on this machine under the same client, which the other runs are divided by.
 * Prints `BARE http://host:port` once listening.
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';

const now = new Date();
const ANSWER = JSON.stringify({
  orderId: randomUUID(),
  campaignId: randomUUID(),
  quantity: 1,
  status: 'admitted',
  paymentDeadline: new Date(now.getTime() + 3_600_000).toISOString(),
  admittedAt: now.toISOString(),
});

const app = Fastify({ logger: false });
app.post('/api/v1/flash-sales/:id/orders', (_request, reply) => {
  reply.code(202).header('content-type', 'application/json; charset=utf-8').send(ANSWER);
});

const address = await app.listen({ port: 0, host: '127.0.0.1' });
console.log(`BARE ${address}`);
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
