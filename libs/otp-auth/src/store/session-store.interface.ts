/** A session: one sign-in, refreshed by a chain of refresh tokens until revoked or expired. */
export interface SessionRecord {
  readonly id: string;
  readonly userId: string;
  /** Authentication methods used to open the session (e.g. `otp`). */
  readonly amr: readonly string[];
  readonly createdAt: number;
  readonly revokedAt: number | null;
}

/** One refresh token of a session, stored as a keyed hash; `parentHash` links the rotation chain. */
export interface RefreshTokenRecord {
  readonly tokenHash: string;
  readonly sessionId: string;
  readonly userId: string;
  readonly parentHash: string | null;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** A refresh token together with the session it belongs to. */
export interface RefreshTokenWithSession {
  readonly token: RefreshTokenRecord;
  readonly session: SessionRecord;
}

/** An entry in the revocation list: `sid:<session id>` or `jti:<token id>`. */
export interface RevocationRecord {
  readonly key: string;
  /** After this instant no token the entry covers can be valid, so the entry can go. */
  readonly expiresAt: number;
  readonly createdAt: number;
}

/** Sessions, their rotating refresh tokens, and the revocation list access tokens are checked against. */
export interface SessionStore {
  /**
   * Stores a session with its first refresh token, all or nothing as far as sessions go: a
   * failure part-way must never leave a session without its token (a transaction, or the token
   * written first, since a token whose session is missing is never found).
   */
  createSession(session: SessionRecord, firstToken: RefreshTokenRecord): Promise<void>;
  findRefreshToken(tokenHash: string): Promise<RefreshTokenWithSession | null>;
  /**
   * Records `successor` as the one child of its parent. Exactly one caller per parent gets
   * true (the insert relies on the unique token hash); the others get false.
   */
  insertSuccessor(successor: RefreshTokenRecord): Promise<boolean>;
  /** Revokes a session and lists it for access-token revocation; true if it was live. */
  revokeSession(sessionId: string, now: number, revocation: RevocationRecord): Promise<boolean>;
  /** Sessions of a user not yet revoked (for logout-all). */
  listActiveSessionIds(userId: string): Promise<string[]>;
  /** Adds an entry to the revocation list (idempotent). */
  addRevocation(revocation: RevocationRecord): Promise<void>;
  /** Unexpired revocations created at or after `since`. */
  listRevocations(since: number, now: number): Promise<RevocationRecord[]>;
}
