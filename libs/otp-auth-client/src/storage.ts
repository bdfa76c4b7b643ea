/** What a body-mode client keeps between calls (and, with a persistent storage, between runs). */
export interface StoredTokens {
  /** The current access token. */
  readonly accessToken: string;
  /** The current refresh token (opaque; rotates on every refresh: always save the newest). */
  readonly refreshToken: string;
  /** When the access token expires, ms since the epoch (this machine's clock). */
  readonly expiresAt: number;
}

/**
 * Where a client in body mode (`refreshTokenDelivery: 'body'`: Node, mobile, desktop) keeps its
 * tokens. The default, {@link MemoryTokenStorage}, forgets them when the process ends; pass your
 * own to persist them (a file with mode 0600, the OS keychain, iOS Keychain / Android Keystore
 * through your app's bridge). Methods may be synchronous or return promises.
 *
 * The refresh token is a long-lived credential: keep it where other code cannot read it. In a
 * browser, prefer cookie mode; a storage backed by `localStorage` would hand it to any script
 * on the page (XSS). Cookie mode never uses a storage.
 *
 * Several clients (tabs, processes) may share one storage: each reads it again under the
 * cross-tab lock before refreshing and adopts tokens another one saved, instead of rotating
 * the same refresh token twice (the second rotation would count as reuse after the server's
 * grace period and end the session).
 */
export interface TokenStorage {
  /** The saved tokens, or null when there are none. */
  load(): StoredTokens | null | Promise<StoredTokens | null>;
  /** Replaces the saved tokens (after sign-in and every refresh). */
  save(tokens: StoredTokens): void | Promise<void>;
  /** Forgets the tokens (sign-out, or the server refused the refresh token). */
  clear(): void | Promise<void>;
}

/** A {@link TokenStorage} in memory: the default for body mode. */
export class MemoryTokenStorage implements TokenStorage {
  private tokens: StoredTokens | null;

  /** @param initial - Tokens to start with (e.g. handed over by another part of the app). */
  constructor(initial: StoredTokens | null = null) {
    this.tokens = initial;
  }

  /** @inheritDoc */
  load(): StoredTokens | null {
    return this.tokens;
  }

  /** @inheritDoc */
  save(tokens: StoredTokens): void {
    this.tokens = tokens;
  }

  /** @inheritDoc */
  clear(): void {
    this.tokens = null;
  }
}
