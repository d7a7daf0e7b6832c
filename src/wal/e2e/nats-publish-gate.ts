import type { NatsConnection } from '@nats-io/transport-node';

/**
 * `nc` as a NATS backend sees it, with a gate in the middle of a pipelined batch: of the requests
 * to subjects starting with `subjectPrefix` (JetStream publishes to one namespace's stream; the
 * KV's `$KV.` subjects pass as usual), the first `passed` go out at once; once each of them is
 * answered, `between()` runs (a test retires the namespace there), and the later ones go out only
 * then, in the order they were made. A failure of `between()` fails the held requests.
 */
export function gatePublishes(
  nc: NatsConnection,
  subjectPrefix: string,
  passed: number,
  between: () => Promise<unknown>,
): NatsConnection {
  if (passed < 1) throw new Error('gatePublishes: at least one request passes before the gate');
  let made = 0;
  const answers: Promise<unknown>[] = [];
  let gate: Promise<unknown> | undefined;
  const request: NatsConnection['request'] = (subject, data, options) => {
    if (!subject.startsWith(subjectPrefix)) return nc.request(subject, data, options);
    made += 1;
    if (made <= passed) {
      const answer = nc.request(subject, data, options);
      answers.push(answer.catch(() => undefined));
      if (made === passed) gate = Promise.all(answers).then(between);
      return answer;
    }
    return gate!.then(() => nc.request(subject, data, options));
  };
  return new Proxy(nc, {
    get(target, property) {
      if (property === 'request') return request;
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
