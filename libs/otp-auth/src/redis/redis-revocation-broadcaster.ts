import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { RevocationBroadcaster } from '../tokens/revocation-broadcaster.interface.js';
import { type RevocationRecord } from '../store/session-store.interface.js';

/** Settings of {@link RedisRevocationBroadcaster}. */
export interface RedisRevocationBroadcasterOptions {
  /** Your ioredis client; publishing uses it, and a duplicate of it subscribes. */
  client: Redis;
  /** Pub/sub channel shared by the instances of one deployment. Default `otp:revocations`. */
  channel?: string;
}

const SUBSCRIBE_WAIT_MS = 2000;

/**
 * Revocations over Redis pub/sub: a logout on one instance reaches every instance's in-memory
 * list within a network round-trip. Pub/sub does not store messages, so an instance that was
 * disconnected catches up through its regular store pull, which stays on.
 */
export class RedisRevocationBroadcaster implements RevocationBroadcaster {
  private readonly logger = new Logger('OtpAuth');
  private readonly channel: string;
  private subscriber: Redis | undefined;

  constructor(private readonly options: RedisRevocationBroadcasterOptions) {
    if (!options?.client || typeof options.client.publish !== 'function') {
      throw new Error('RedisRevocationBroadcaster: `client` must be an ioredis instance.');
    }
    this.channel = options.channel ?? 'otp:revocations';
  }

  async publish(entry: RevocationRecord): Promise<void> {
    await this.options.client.publish(
      this.channel,
      JSON.stringify({ key: entry.key, expiresAt: entry.expiresAt, createdAt: entry.createdAt }),
    );
  }

  async subscribe(onEntry: (entry: RevocationRecord) => void): Promise<void> {
    // A connection of its own that waits for Redis as long as it takes: no per-command retry
    // limit or timeout (the shared client may fail fast, and would drop a queued SUBSCRIBE).
    const subscriber = this.options.client.duplicate({
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      commandTimeout: undefined,
      lazyConnect: false,
    });
    subscriber.on('error', () => undefined); // meanwhile the store pull carries revocations
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const entry = parseEntry(message);
      if (entry) onEntry(entry);
      else this.logger.warn('Ignored a malformed revocation message on Redis.');
    });
    // (Re)subscribe on every connection, so a subscription that failed while Redis was down is
    // made as soon as it is back.
    const subscribe = () =>
      subscriber.subscribe(this.channel).then(
        () => true,
        () => false,
      );
    subscriber.on('ready', () => void subscribe());
    this.subscriber = subscriber;
    // Startup does not wait on Redis for long.
    const timeout = new Promise<false>((resolve) => setTimeout(resolve, SUBSCRIBE_WAIT_MS, false).unref());
    if (!(await Promise.race([subscribe(), timeout]))) {
      this.logger.warn('Redis did not confirm the revocation subscription yet; relying on store pulls until it does.');
    }
  }

  async close(): Promise<void> {
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (!subscriber) return;
    // A QUIT would wait in the offline queue for a Redis that may never come back.
    if (subscriber.status !== 'ready') {
      subscriber.disconnect();
      return;
    }
    await Promise.race([
      subscriber.quit().catch(() => subscriber.disconnect()),
      new Promise((resolve) => setTimeout(resolve, 1000).unref()),
    ]);
    subscriber.disconnect();
  }
}

/** Only well-formed `sid:`/`jti:` entries are applied; anything else on the channel is dropped. */
function parseEntry(message: string): RevocationRecord | null {
  try {
    const value = JSON.parse(message) as Partial<RevocationRecord>;
    if (
      typeof value.key === 'string' &&
      /^(sid|jti):.{1,200}$/.test(value.key) &&
      Number.isFinite(value.expiresAt) &&
      Number.isFinite(value.createdAt)
    ) {
      return { key: value.key, expiresAt: value.expiresAt!, createdAt: value.createdAt! };
    }
  } catch {
    // fall through
  }
  return null;
}
