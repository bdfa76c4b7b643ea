import { type RevocationRecord } from '../store/session-store.interface.js';

/**
 * Pushes revocations to every instance as they happen (e.g. Redis pub/sub), so a logout on one
 * instance is refused by the others within milliseconds instead of at their next store pull.
 * Optional: without it, instances converge through the store every `revocationSyncInterval`,
 * and that pull stays on as the safety net when a message is lost.
 */
export interface RevocationBroadcaster {
  /** Announces an entry already written to the store. */
  publish(entry: RevocationRecord): Promise<void>;
  /** Starts delivering entries announced by any instance (this one included). */
  subscribe(onEntry: (entry: RevocationRecord) => void): Promise<void>;
  /** Stops delivery and releases connections it opened. */
  close?(): Promise<void>;
}
