import type { NatsConnection } from '@nats-io/transport-node';
import { BackendUnavailableError, type StreamBackend, type StreamConsumer } from '../stream/contract.ts';
import { createNatsJetStreamBackend, type NatsJetStreamBackendOptions } from './index.ts';

/**
 * The nats-jetstream backend of a process that could not reach NATS at start: until `connection`
 * resolves every call throws BackendUnavailableError (writes go to the fallback or answer 503,
 * /health/ready names it); from then on it is the real backend, and a consumer asked for meanwhile
 * starts then. No restart needed.
 */
export function createPendingNatsJetStreamBackend(
  connection: Promise<NatsConnection>,
  options: NatsJetStreamBackendOptions = {},
): StreamBackend {
  let backend: StreamBackend | undefined;
  let closed = false;
  void connection.then((nc) => {
    if (!closed) backend = createNatsJetStreamBackend(nc, options);
  });
  const use = <T>(call: (b: StreamBackend) => Promise<T>): Promise<T> =>
    backend
      ? call(backend)
      : Promise.reject(
          new BackendUnavailableError(
            'nats-jetstream',
            'NATS has not been reachable since this process started',
          ),
        );
  return {
    name: 'nats-jetstream',
    append: (rows, appendOptions) => use((b) => b.append(rows, appendOptions)),
    find: (tenantId, namespace, messageId) => use((b) => b.find(tenantId, namespace, messageId)),
    lag: () => use((b) => b.lag()),
    ping: () => use((b) => b.ping()),
    drop: (tenantId, namespace, dropOptions) => use((b) => b.drop(tenantId, namespace, dropOptions)),
    retire: (tenantId, namespace, retireOptions) => use((b) => b.retire(tenantId, namespace, retireOptions)),
    reopen: (tenantId, namespace) => use((b) => b.reopen(tenantId, namespace)),
    follow: (tenantId, namespace, onMessage) => use((b) => b.follow(tenantId, namespace, onMessage)),
    async consume(deps) {
      if (backend) return backend.consume(deps);
      let stopped = false;
      let started: Promise<StreamConsumer | undefined> | undefined;
      void connection.then(() => {
        if (stopped || !backend) return;
        started = backend.consume(deps).catch((err: unknown) => {
          deps.logger.error({ err }, 'the nats-jetstream consumer could not start');
          return undefined;
        });
      });
      return {
        async stop() {
          stopped = true;
          await (await started)?.stop();
        },
      };
    },
    async close() {
      closed = true;
      await backend?.close();
    },
  };
}
