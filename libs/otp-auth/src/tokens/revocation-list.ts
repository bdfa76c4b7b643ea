import { setTimeout as sleep } from 'node:timers/promises';
import { OTP_TOKEN_CONFIG, type TokenConfig } from './token.options.js';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { type RevocationRecord } from '../store/session-store.interface.js';

/**
 * Extra look-back on each pull, so entries committed a while after their timestamp (a slow
 * transaction, a skewed clock) are not missed; a full reload every FULL_RELOAD_MS heals the rest.
 */
const SYNC_OVERLAP_MS = 30_000;
/** Longest a logout waits for the revocation broadcast. */
const PUBLISH_WAIT_MS = 250;
const FULL_RELOAD_MS = 60_000;

/**
 * In-memory mirror of the store's revocation list, so guards check revocation without a
 * database round-trip. Entries made on this instance apply at once; entries made elsewhere
 * arrive with the next pull (every `revocationSyncInterval`). Each entry is dropped once no
 * token it covers can still be valid, so memory holds only what can matter.
 */
@Injectable()
export class RevocationList implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('OtpAuth');
  private readonly sessions = new Map<string, number>();
  private readonly tokens = new Map<string, number>();
  private lastPull = 0;
  private lastFullPull = 0;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;

  constructor(@Inject(OTP_TOKEN_CONFIG) private readonly config: TokenConfig) {}

  async onModuleInit(): Promise<void> {
    // Subscribe before the first pull, so nothing revoked in between is missed. A broadcaster
    // that fails only costs speed: the pull below still carries every revocation.
    try {
      await this.config.revocationBroadcaster?.subscribe((entry) => this.remember(entry));
    } catch (error) {
      this.logger.warn(`Revocation broadcast unavailable; relying on store pulls: ${(error as Error).message}`);
    }
    // Without the list the guards would accept revoked tokens: fail startup instead.
    await this.pull(true);
    this.timer = setInterval(() => void this.sync(), this.config.revocationSyncInterval * 1000);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.config.revocationBroadcaster?.close?.();
  }

  /** True if the session or the token itself was revoked. Hot path: two map lookups. */
  isRevoked(sessionId: string, tokenId: string): boolean {
    return this.sessions.has(sessionId) || this.tokens.has(tokenId);
  }

  /**
   * Applies an entry the caller has written to the store: here at once, and on other instances
   * through the broadcaster when there is one (else at their next pull). Never throws.
   */
  async announce(entry: RevocationRecord): Promise<void> {
    this.remember(entry);
    const broadcaster = this.config.revocationBroadcaster;
    if (!broadcaster) return;
    try {
      // Bounded: a hung Redis must not hold up a logout (the pull is the fallback).
      await Promise.race([
        broadcaster.publish(entry),
        sleep(PUBLISH_WAIT_MS, undefined, { ref: false }).then(() => {
          throw new Error(`no answer within ${PUBLISH_WAIT_MS} ms`);
        }),
      ]);
    } catch (error) {
      this.logger.warn(
        `Could not broadcast a revocation; other instances get it at their next pull: ${(error as Error).message}`,
      );
    }
  }

  /** Records an entry locally. */
  remember(entry: RevocationRecord): void {
    if (entry.key.startsWith('sid:')) this.sessions.set(entry.key.slice(4), entry.expiresAt);
    else if (entry.key.startsWith('jti:')) this.tokens.set(entry.key.slice(4), entry.expiresAt);
  }

  /** Pulls entries created since the last pull and forgets expired ones. */
  sync(): Promise<void> {
    // One pull at a time; a slow database must not pile up queries.
    this.syncing ??= this.pull().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async pull(rethrow = false): Promise<void> {
    const now = this.config.clock();
    const full = this.lastPull === 0 || now - this.lastFullPull >= FULL_RELOAD_MS;
    const since = full ? 0 : this.lastPull - SYNC_OVERLAP_MS;
    try {
      const entries = await this.config.store.listRevocations(since, now);
      for (const entry of entries) this.remember(entry);
      this.lastPull = now;
      if (full) this.lastFullPull = now;
    } catch (error) {
      if (rethrow) throw error;
      this.logger.warn(`Could not pull revocations; will retry: ${(error as Error).message}`);
    }
    for (const map of [this.sessions, this.tokens]) {
      for (const [key, expiresAt] of map) if (expiresAt <= now) map.delete(key);
    }
  }
}
