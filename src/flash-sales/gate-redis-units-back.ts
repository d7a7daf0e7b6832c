import type { Redis } from 'ioredis';
import { closeRedis } from '../platform/redis-client.ts';
import type { UnitsBackListener } from './gate.ts';

/**
 * The Redis gate's units-back notices (gate-redis.ts), on a second connection (a subscriber
 * cannot run commands), opened on the first `onUnitsBack`.
 */
export class UnitsBackSubscription {
  readonly #redis: Redis;
  readonly #channel: string;
  readonly #listeners = new Set<UnitsBackListener>();
  #subscriber: Redis | undefined;
  #listening = false;
  #closed = false;

  constructor(redis: Redis, channel: string) {
    this.#redis = redis;
    this.#channel = channel;
  }

  get listening(): boolean {
    return this.#listening;
  }

  onUnitsBack(listener: UnitsBackListener): () => void {
    this.#listeners.add(listener);
    if (!this.#subscriber && !this.#closed) this.#subscribe();
    return () => this.#listeners.delete(listener);
  }

  #notify(campaignId: string | undefined, version?: string): void {
    for (const listener of [...this.#listeners]) listener(campaignId, version);
  }

  /** Subscribes on a connection of its own; every (re)connection subscribes again and tells the listeners to forget what they remember (notices may have been missed meanwhile). */
  #subscribe(): void {
    const subscriber = this.#redis.duplicate({ autoResubscribe: false, commandTimeout: 2000 });
    this.#subscriber = subscriber;
    subscriber.on('error', () => {}); // the command connection logs the outage
    subscriber.on('ready', () => {
      subscriber.subscribe(this.#channel).then(
        () => {
          if (this.#closed) return;
          this.#listening = true;
          this.#notify(undefined);
        },
        // Not subscribed: drop the connection so that the next one subscribes again.
        () => {
          if (!this.#closed) subscriber.disconnect(true);
        },
      );
    });
    subscriber.on('close', () => {
      if (!this.#listening) return;
      this.#listening = false;
      this.#notify(undefined);
    });
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      const bar = message.indexOf('|');
      if (bar >= 0) this.#notify(message.slice(bar + 1), message.slice(0, bar));
    });
  }

  /** No notice from now on: not listening, no listener left, no new subscriber. */
  stop(): void {
    this.#closed = true;
    this.#listening = false;
    this.#listeners.clear();
  }

  /** Closes the subscriber's connection, if one was opened. */
  disconnect(): Promise<void> | undefined {
    return this.#subscriber ? closeRedis(this.#subscriber) : undefined;
  }
}
